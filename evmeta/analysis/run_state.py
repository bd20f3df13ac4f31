"""The state of an analysis run: :class:`RunState`, what the stages of
:func:`evmeta.run_analysis` write into while it runs, and :class:`AnalysisRun`, the frozen
run it returns. A module of its own so that the stages (:mod:`evmeta.analysis.stages` and
the modules beside it) name the state they receive without importing the pipeline that
calls them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from evmeta.analysis.spec import AnalysisSpec
from evmeta.comparisons import Comparisons
from evmeta.results import AnalysisModels
from evmeta.run_tables import RunTables


@dataclass
class RunState:
    """What the stages of a run write into while it runs (mutable; internal to the
    pipeline): the models as one frozen :class:`~evmeta.results.AnalysisModels` and the
    derived tables as one frozen :class:`~evmeta.run_tables.RunTables`, which the
    stages replace, and the figures, notes and files they add. :meth:`freeze` turns it into
    the :class:`AnalysisRun` that :func:`run_analysis` returns."""

    spec: AnalysisSpec
    output: Path
    comparisons: Comparisons
    exclusions: pd.DataFrame
    #: The fitted models, one typed field per family (frozen; stages record with ``with_``).
    models: AnalysisModels = field(default_factory=AnalysisModels)
    #: The derived tables, one typed field each (frozen; stages record with ``with_``).
    tables: RunTables = field(default_factory=RunTables)
    figures: dict[str, list[Path]] = field(default_factory=dict)
    recovery: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    #: Optional report sections (evmeta.report.sections.ReportSection), each from its own partial.
    report_sections: list[Any] = field(default_factory=list)
    #: The extraction's validation notes (evmeta.errors.Problem, severity "note"): accepted
    #: with a remark, shown in the report beside the run's own notes.
    validation_notes: list[Any] = field(default_factory=list)

    def freeze(self, output: Path | None = None) -> AnalysisRun:
        """The finished run, frozen; paths are moved into ``output`` when given (the folder
        the staging folder was renamed to)."""
        target = self.output if output is None else output

        def moved(path: Path) -> Path:
            return path if output is None else target / Path(path).name

        return AnalysisRun(
            spec=self.spec,
            output=target,
            comparisons=self.comparisons,
            exclusions=self.exclusions,
            models=self.models,
            tables=self.tables,
            figures=MappingProxyType({n: tuple(map(moved, p)) for n, p in self.figures.items()}),
            recovery=self.recovery,
            notes=tuple(self.notes),
            provenance=MappingProxyType(dict(self.provenance)),
            files=tuple(map(moved, self.files)),
            report_sections=tuple(self.report_sections),
            validation_notes=tuple(self.validation_notes),
        )


@dataclass(frozen=True, eq=False)
class AnalysisRun:
    """Everything an analysis produced (also written to ``output``), frozen.

    Attributes
    ----------
    spec : AnalysisSpec
    output : Path
        The report folder.
    comparisons : Comparisons
        The harmonized comparisons (before the spec's filters).
    exclusions : DataFrame
        Every comparison or row left out, with the reason (``exclusions.csv``).
    models : AnalysisModels
        The fitted models, one typed field per family (:class:`evmeta.results.AnalysisModels`).
    tables : RunTables
        The derived tables, one typed field each (:class:`evmeta.run_tables.RunTables`;
        each is written to ``<field>.csv``).
    figures : Mapping[str, tuple[Path, ...]]
        Each figure's files (one per format and page).
    recovery : DataFrame or None
        Posterior intervals against a simulated truth (``[validation] truth``).
    notes : tuple[str, ...]
        What was not fitted or drawn, and why; caveats the report repeats.
    provenance : Mapping[str, Any]
        The content of ``provenance.json`` (inputs' SHA-256, seeds, versions, times).
    files : tuple[Path, ...]
        The result files written.
    report_sections : tuple[ReportSection, ...]
        Optional report sections (consistency, dose-response, ...).
    validation_notes : tuple[Problem, ...]
        The extraction's validation notes (accepted with a remark).
    """

    spec: AnalysisSpec
    output: Path
    comparisons: Comparisons
    exclusions: pd.DataFrame
    models: AnalysisModels
    tables: RunTables
    figures: Mapping[str, tuple[Path, ...]]
    recovery: pd.DataFrame | None
    notes: tuple[str, ...]
    provenance: Mapping[str, Any]
    files: tuple[Path, ...]
    report_sections: tuple[Any, ...]
    validation_notes: tuple[Any, ...]


__all__ = ["AnalysisRun", "RunState"]
