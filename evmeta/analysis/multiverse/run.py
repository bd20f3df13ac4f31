"""What a multiverse run produced: :class:`MultiverseRun` (also written to its folder by
:mod:`evmeta.analysis.multiverse.output`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta.analysis.multiverse.summary import summary_sentences
from evmeta.analysis.spec import AnalysisSpec


@dataclass
class MultiverseRun:
    """Everything a multiverse run produced (also written to ``output``)."""

    spec: AnalysisSpec
    output: Path
    results: pd.DataFrame
    summary: dict[str, Any]
    influence: pd.DataFrame
    null_test: pd.DataFrame | None = None
    figures: dict[str, list[Path]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def sentences(self) -> list[str]:
        return summary_sentences(self.summary, self.influence)


__all__ = ["MultiverseRun"]
