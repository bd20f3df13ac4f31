"""Import a comparison table (one row per comparison, treatment and control side by side)
into an extraction workbook: ``evmeta import-wide TABLE --map MAP.toml -o BOOK.xlsx``.

CAMARADES/SyRF-style reviews keep their data as such tables (``n_RIC``, ``Mean_RIC``,
``n_Control``, ...). A TOML map names the table's header for each evmeta field
(``[columns]``), gives values for fields the table lacks (``[constants]``) and says whether
the control n was already divided among the arms sharing it (``[options]
control_n_is_split``). The importer

- groups rows of one study (outcome, time point, species, strain, sex, disease model) whose
  control values are identical into one experiment with one control arm shared by their
  treatment arms, restoring the control's reported n when ``control_n_is_split`` from every
  row sharing it (a row left out for its treatment arm included: the group had those
  animals; the control row's notes name it);
- writes studies, preparations, experiments, arms and outcomes rows, so that
  :func:`evmeta.build_comparisons` (``shared_control="split"``) gives the yi and vi that
  escalc gives on the table itself (where a row sharing a control is left out, the
  control is divided among the arms imported, as build_comparisons always does);
- fills required fields the table does not have with a placeholder and says so (README
  sheet, the row's ``notes``, :attr:`WideImport.notes`), so the book validates and tells
  the reviewer what to fill in (a ``non_ev`` table is not asked to fill in the EV-only
  fields: only the rows' notes name those placeholders);
- keeps the reviewer's own columns named under ``[moderators]`` (cleaned, typed numeric or
  categorical) as extra columns of the arms sheet, which :func:`evmeta.build_comparisons`
  carries to the comparisons table, and writes the SYRCLE items named under
  ``[risk_of_bias]`` as risk_of_bias rows;
- puts every table row either in the workbook or in the import log with its reason, and
  lists every table column it does not read there as "not imported";
- refuses a table with two columns of one header (naming both), and folds the reasons of
  skipped rows to one line per root cause (docs/import_wide.md).

It lives in ``schema`` (not ``sheets``) because it needs the column specifications and the
template writer of layer 2; reading the table itself uses :func:`evmeta.sheets.read_raw`.

Modules, in the order of an import: ``table`` (the file and its header), ``table_cells`` (a
cell read as a value, number, text or year), ``rows`` (table rows to fields, or the reason
a row cannot be used), ``build`` (the row import itself: :func:`wide_to_sheets`) with
``studies``, ``experiments`` (one per shared control arm), ``placeholders``, ``moderators``
and ``risk_of_bias``; ``log`` (the import log), ``result`` (:class:`WideImport`) and
``workbook`` (:func:`import_wide`: the workbook and the log written). The map itself is
:mod:`evmeta.schema.wide_map`.
"""

from __future__ import annotations

from evmeta.schema.wide_import.build import wide_to_sheets
from evmeta.schema.wide_import.log import LOG_COLUMNS, cause, fold_reasons
from evmeta.schema.wide_import.moderators import MODERATOR_MISSING, NOT_A_NUMBER_WORDS
from evmeta.schema.wide_import.placeholders import PLACEHOLDERS
from evmeta.schema.wide_import.result import WideImport
from evmeta.schema.wide_import.table import header_index, read_table
from evmeta.schema.wide_import.workbook import import_wide
from evmeta.schema.wide_map import WideMap, parse_map, read_map

__all__ = [
    "LOG_COLUMNS",
    "MODERATOR_MISSING",
    "NOT_A_NUMBER_WORDS",
    "PLACEHOLDERS",
    "WideImport",
    "WideMap",
    "cause",
    "fold_reasons",
    "header_index",
    "import_wide",
    "parse_map",
    "read_map",
    "read_table",
    "wide_to_sheets",
]
