"""What the report reads of an analysis run: :class:`ReportedRun`, a typed protocol.

The report is drawn from the run the pipeline is finishing
(:class:`evmeta.analysis.run_state.RunState`) and from a returned, frozen
:class:`evmeta.analysis.run_state.AnalysisRun`; both satisfy this protocol. The report reads
the models through their typed fields (:class:`evmeta.results.AnalysisModels`) and the
derived tables through theirs (:class:`evmeta.run_tables.RunTables`), so a type checker sees
a misspelt or missing table. The spec is the one loosely typed member: its class lives in the
analysis layer, above the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the run's typed parts, for the annotations only
    import pandas as pd

    from evmeta.results import AnalysisModels
    from evmeta.run_tables import RunTables


class ReportedRun(Protocol):
    """An analysis run as the report reads it (every member read-only).

    Attributes
    ----------
    spec : AnalysisSpec
        The analysis spec (``evmeta.analysis.spec.AnalysisSpec``).
    output : Path
        The folder the report is written to.
    models : AnalysisModels
        The fitted models, one typed field per family.
    tables : RunTables
        The derived tables, one typed field each.
    figures : Mapping[str, Sequence[Path]]
        Each figure's files.
    recovery : DataFrame or None
        Posterior intervals against a simulated truth.
    notes : Sequence[str]
        What was not fitted or drawn, and why.
    provenance : Mapping[str, Any]
        The content of ``provenance.json``.
    exclusions : DataFrame
        The comparisons and rows left out, with the reason.
    report_sections : Sequence[ReportSection]
        The optional sections.
    validation_notes : Sequence[Problem]
        The extraction's validation notes.
    """

    @property
    def spec(self) -> Any: ...
    @property
    def output(self) -> Path: ...
    @property
    def models(self) -> AnalysisModels: ...
    @property
    def tables(self) -> RunTables: ...
    @property
    def figures(self) -> Mapping[str, Sequence[Path]]: ...
    @property
    def recovery(self) -> pd.DataFrame | None: ...
    @property
    def notes(self) -> Sequence[str]: ...
    @property
    def provenance(self) -> Mapping[str, Any]: ...
    @property
    def exclusions(self) -> pd.DataFrame: ...
    @property
    def report_sections(self) -> Sequence[Any]: ...
    @property
    def validation_notes(self) -> Sequence[Any]: ...


__all__ = ["ReportedRun"]
