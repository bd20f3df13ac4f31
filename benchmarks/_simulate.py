"""Simulated extractions of any size for benchmarks (replicates the example workbook)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evmeta.schema.extraction import Extraction
from evmeta.schema.validation.validate import read_extraction

ROOT = Path(__file__).resolve().parent.parent

_ID_COLUMNS = ["study_id", "prep_id", "experiment_id", "arm_id", "outcome_id"]


def replicate_example(copies: int) -> Extraction:
    """The example extraction repeated ``copies`` times with fresh ids (in memory)."""
    base = read_extraction(ROOT / "extraction" / "example.xlsx")
    sheets = {}
    for name, frame in base.sheets.items():
        parts = []
        for copy in range(copies):
            part = frame.copy()
            for column in _ID_COLUMNS:
                if column in part.columns:
                    part[column] = part[column].where(
                        part[column].isna(), part[column].astype(str) + f"#{copy}"
                    )
            part["_row"] = part["_row"] + copy * len(frame)
            parts.append(part)
        sheets[name] = pd.concat(parts, ignore_index=True)
    return Extraction(sheets, base.path, base.sha256)
