"""The extraction schema: sheets, columns, vocabularies and typed records.

Words used everywhere in evmeta (fixed here, once):

study
    A publication.
preparation
    An EV batch: MSCs from one source, conditioned one way, EVs isolated one way.
experiment
    An animal cohort under one disease model.
arm
    A group of animals within an experiment (EV-treated, vehicle control, sham,
    positive control).
outcome
    One quantity measured in one arm at one time point.
comparison
    An EV arm against its control arm on one outcome at one time point; it carries one
    effect size ``yi`` with sampling variance ``vi``.
"""

from evmeta._lazy import lazy_namespace
from evmeta.schema.columns import ID_COLUMNS, SHEET_DESCRIPTIONS, SHEETS, Column, column_map
from evmeta.schema.records import RECORDS
from evmeta.schema.vocabulary import (
    IsolationMethod,
    Match,
    Vocabulary,
    display_label,
    isolation_steps,
    parse_isolation_method,
    species_table,
    vocabularies,
    vocabulary,
)

# The workbook's readers and writers load lazily (they import openpyxl and pydantic models).
_LAZY = {
    "Extraction": "evmeta.schema.extraction",
    "read_extraction": "evmeta.schema.validation.validate",
    "validate_extraction": "evmeta.schema.validation.validate",
    "write_template": "evmeta.schema.template",
    "WideMap": "evmeta.schema.wide_import",
    "WideImport": "evmeta.schema.wide_import",
    "import_wide": "evmeta.schema.wide_import",
}

__all__ = [
    *_LAZY,
    "ID_COLUMNS",
    "RECORDS",
    "SHEETS",
    "SHEET_DESCRIPTIONS",
    "Column",
    "IsolationMethod",
    "Match",
    "Vocabulary",
    "column_map",
    "display_label",
    "isolation_steps",
    "parse_isolation_method",
    "species_table",
    "vocabularies",
    "vocabulary",
]

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY)
