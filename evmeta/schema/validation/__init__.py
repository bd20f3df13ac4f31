"""Validation of an extraction: every cell coerced and checked, every row accounted for.

``validate`` reads a workbook and collects every problem (``collector``), checks ids and
cross-sheet keys (``keys``, with did-you-mean from ``suggest``), row rules (``row_rules``),
the pairing of EV rows with their controls (``pairing``), dose texts (``dose_check``) and
SD-or-SEM signs (``dispersion_check``); the public entry points are
:func:`~evmeta.schema.validation.validate.read_extraction` and
:func:`~evmeta.schema.validation.validate.validate_extraction`.
"""
