"""``evmeta import-wide``: read the table and the map, write the extraction workbook (with
its README lines for the reviewer) and the import log beside it.
"""

from __future__ import annotations

from pathlib import Path

from evmeta.errors import SpecError
from evmeta.schema.template import write_template
from evmeta.schema.wide_import.build import wide_to_sheets
from evmeta.schema.wide_import.result import WideImport
from evmeta.schema.wide_import.table import read_table
from evmeta.schema.wide_map import read_map


def import_wide(
    table: str | Path, map_path: str | Path, output: str | Path, *, sheet: str | None = None
) -> WideImport:
    """Import a comparison table into an extraction workbook.

    Parameters
    ----------
    table : str or Path
        CSV file or .xlsx workbook, one row per comparison (treatment and control columns
        side by side).
    map_path : str or Path
        The map (TOML): ``[columns]`` evmeta field = the table's header, ``[constants]``
        a value for fields the table lacks, ``[options] control_n_is_split``,
        ``[moderators]`` name = header (or a list of headers) and ``[risk_of_bias]`` SYRCLE
        item = header with ``[risk_of_bias.values]`` (docs/import_wide.md). Fields:
        ``study_id`` (required), ``first_author``, ``year``, ``title``, ``doi``,
        ``species``, ``strain``, ``sex``, ``disease_model``, ``outcome``, ``unit``,
        ``timepoint``, ``timepoint_unit``, ``higher_is_better``, ``dose_text``, ``route``,
        ``isolation_method``, ``msc_tissue_source``, ``treat_label``, and per arm
        ``treat_``/``control_`` + ``n``, ``mean``, ``sd``, ``sem``, ``median``, ``q1``,
        ``q3``, ``events``, ``total``.
    output : str or Path
        Workbook to write (.xlsx). The import log is written beside it as
        ``<name>.import_log.csv``.
    sheet : str, optional
        Sheet of an .xlsx table (default: the first).

    Returns
    -------
    WideImport

    Raises
    ------
    SpecError
        A bad map, a header the table lacks or has twice, a risk-of-bias word the map cannot
        read, or an unreadable table (the message says which).
    """
    from evmeta.sheets.export import write_csv

    output = Path(output)
    if output.suffix.lower() != ".xlsx":
        raise SpecError(f"{output} should end in .xlsx")
    wide_map = read_map(map_path)
    try:
        result = wide_to_sheets(read_table(table, sheet), wide_map)
    except SpecError as exc:
        message = str(exc)
        raise SpecError(message if str(table) in message else f"{Path(table).name}: {message}") from None
    readme = [
        f"Imported from {Path(table).name} with the map {Path(map_path).name} by evmeta import-wide.",
        "Each experiment holds one control arm and the treatment arms that share it; "
        "every outcome row's notes give its table row.",
        *(f"TO FILL IN: {n}" for n in result.notes),
    ]
    # As before write_template refused existing files (the CLI checks the path first).
    extra = {
        name: f"Moderator from the table column(s) {', '.join(map(repr, wide_map.moderators[name]))} "
        f"({kind}; imported by evmeta import-wide). It is carried to the comparisons table."
        for name, kind in result.moderators.items()
    }
    if extra:
        readme.append(
            "Moderators (the reviewer's own columns) are extra columns at the right of the arms sheet: "
            + ", ".join(f"{n} ({k})" for n, k in result.moderators.items())
        )
    if result.data["risk_of_bias"]:
        readme.append(
            "risk_of_bias: SYRCLE items imported from the table columns "
            + ", ".join(f"{h!r} -> {i}" for i, h in wide_map.risk_of_bias.items())
            + "; the other items are empty (not judged in the table)"
        )
    result.workbook = write_template(
        output, data=result.data, readme=readme, overwrite=True, extra_columns={"arms": extra}
    )
    write_csv(result.log, output.with_name(f"{output.stem}.import_log.csv"))
    return result
