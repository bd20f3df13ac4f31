"""Run an analysis spec end to end: ``evmeta.run_analysis("analyses/example.toml")``.

Stages: read and validate the extraction -> comparisons -> filters -> frequentist models
(random effects, subgroups, meta-regression, multilevel with CR2) -> bias diagnostics ->
Bayesian model (contrasts, predictions) -> selection model, bias model averaging (with the
moderators of ``[bias]`` when set: :mod:`evmeta.analysis.bias_moderators_stage`) and
isolation-method evidence -> sensitivity analyses (prior sensitivity among them) -> figures
-> tables, report and provenance in ``reports/<name>/``. Figures and ``posterior.nc`` are
written by forked workers while later stages run (:mod:`evmeta.analysis.figures`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evmeta.analysis.intervention import without_ev_checks
from evmeta.analysis.run_state import AnalysisRun, RunState
from evmeta.analysis.spec import load_spec
from evmeta.analysis.table import analysis_table
from evmeta.errors import ExtractionError, ModelError, Problem
from evmeta.models.base.provenance import versions
from evmeta.schema.validation.validate import read_extraction
from evmeta.sheets.export import write_csv

if TYPE_CHECKING:  # the progress display is imported only when shown
    from rich.progress import Progress, TaskID

STAGES = [
    "extraction",
    "comparisons",
    "frequentist",
    "bias",
    "bayesian",
    "bias_averaging",
    "sensitivity",
    "figures",
    "report",
]


def _sha256(path: Path | None) -> str:
    """SHA-256 of the spec or the extraction (a workbook, or a folder of CSV files); "" for
    a spec built in memory (no file)."""
    from evmeta.sheets.raw import file_sha256

    return "" if path is None else file_sha256(path)


class _Progress:
    def __init__(self, quiet: bool, callback: Callable[[str], None] | None) -> None:
        self.quiet, self.callback = quiet, callback
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _Progress:
        if not self.quiet and self.callback is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), transient=False
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=len(STAGES))
        return self

    def stage(self, name: str) -> None:
        if self.callback:
            self.callback(name)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=name, advance=0)

    def done(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def run_analysis(
    path: str | Path,
    *,
    output: str | Path | None = None,
    quiet: bool = False,
    progress: Callable[[str], None] | None = None,
) -> AnalysisRun:
    """Run ``analyses/<name>.toml`` and write ``reports/<name>/``.

    The report is built in a hidden folder beside the target, under a lock (a second run
    into the same folder is refused while this one runs), and moved in only when complete;
    a failed run leaves an earlier report there marked out of date (``RUN-FAILED.txt`` and
    a banner in its ``report.html``), see :mod:`evmeta._outputs`. A result file that does
    not read back (``posterior.nc``) is removed and named in a note, never listed as written.

    Parameters
    ----------
    path : str or Path
        The analysis spec.
    output : str or Path, optional
        Folder to write (default: the spec's ``output`` or ``reports/<name>`` beside ``analyses/``).
    quiet : bool
        No progress display.
    progress : callable, optional
        Called with each stage's name (instead of the rich display).

    Returns
    -------
    AnalysisRun

    Raises
    ------
    SpecError, ExtractionError, ModelError
        With messages that name the problem (the CLI prints them without a traceback).
    PathError
        Another run is writing the same folder.
    """
    from evmeta._outputs import OutputFolder

    spec = load_spec(path)
    target = Path(output).resolve() if output else spec.output_path
    with OutputFolder(target) as folder:
        assert folder.staging is not None  # set on entering the context
        state = _run_into(path, folder.staging, quiet, progress)
        _drop_unreadable(state)
        folder.commit(last=["provenance.json", "report.html"])
    return state.freeze(target)


def _drop_unreadable(run: RunState) -> None:
    """Remove a written result that does not read back (``posterior.nc``), with a note."""
    from evmeta._outputs import verify_readable
    from evmeta.errors import PathError

    posterior = run.output / "posterior.nc"
    if not posterior.exists():
        return
    try:
        verify_readable(posterior, _read_netcdf_groups)
    except PathError as exc:
        posterior.unlink(missing_ok=True)
        run.files = [f for f in run.files if Path(f).name != "posterior.nc"]
        run.notes.append(f"{exc}; it was removed (the report's other results are unaffected)")
        outputs = run.provenance.get("outputs", [])
        run.provenance["outputs"] = [name for name in outputs if name != "posterior.nc"]
        (run.output / "provenance.json").write_text(
            json.dumps(run.provenance, indent=1, default=str) + "\n", encoding="utf-8"
        )


def _read_netcdf_groups(path: Path) -> None:
    """Open ``posterior.nc`` (HDF5, as ArviZ writes it) and find its posterior group."""
    from evmeta.errors import PathError

    try:
        import h5py
    except ImportError:  # no HDF5 reader: at least the file must start like one
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89HDF\r\n\x1a\n":
                raise PathError(f"{path.name} is not an HDF5/netCDF-4 file") from None
        return
    with h5py.File(path, "r") as handle:
        if "posterior" not in handle:
            raise PathError(f"{path.name} has no posterior group")


def _run_into(
    path: str | Path, output: Path, quiet: bool, progress: Callable[[str], None] | None
) -> RunState:
    """Run the spec, writing every file into ``output`` (the staging folder)."""
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    spec = load_spec(path)
    out = Path(output).resolve() if output else spec.output_path
    out.mkdir(parents=True, exist_ok=True)
    from evmeta.analysis import figures as batch_figures

    with _Progress(quiet, progress) as bar, batch_figures.limit_blas_threads():
        bar.stage("extraction: reading and validating")
        extraction = read_extraction(spec.extraction_path)
        _require_studies(extraction)
        # A table of another intervention: the MSC-EV-only analyses are left out, one note each.
        spec, ev_notes = without_ev_checks(spec, extraction.preparations)
        bar.done()
        bar.stage("comparisons: effect sizes, doses, quality")
        built = analysis_table(extraction, spec)
        table, comparisons, exclusions = built.table, built.comparisons, built.exclusions
        if len(table) < 2:
            raise ModelError(f"only {len(table)} comparison(s) remain after the filters; nothing to pool")
        run = RunState(spec, out, comparisons, exclusions, validation_notes=list(extraction.notes))
        run.notes.extend(ev_notes)
        run.tables = run.tables.with_(analysis_table=table)
        bar.done()
        from evmeta.analysis.certainty import certainty_stage, check_overrides

        check_overrides(spec, table)  # a [[certainty.override]] naming no outcome stops the run here
        from evmeta.analysis.figure_jobs import check_forest_by

        check_forest_by(spec, table)  # a forest_by naming no column of the table stops it too
        import evmeta.analysis.prisma_stage as prisma_stage
        import evmeta.analysis.stages as stages
        from evmeta.analysis.bias_moderators_stage import bias_moderators_stage
        from evmeta.analysis.consistency import consistency, extend_bias_table

        bar.stage("frequentist models")
        stages.frequentist(run, table)
        consistency(run, table)  # location-scale model, threshold probabilities, multilevel I²
        from evmeta.analysis.correlated import correlated_effects

        correlated_effects(run, built)  # [comparisons] combine_outcomes / correlation: rho sweep
        figure_batch = stages.start_figures(run, table)  # drawn while the models below run
        try:
            bar.done()
            bar.stage("bias diagnostics")
            stages.bias(run)
            extend_bias_table(run)  # Egger and PET-PEESE as moderators of the multilevel model
            bar.done()
            bar.stage("Bayesian model")
            stages.bayesian(run, table)
            stages.start_posterior_outputs(run, figure_batch)  # figure and posterior.nc
            bar.done()
            bar.stage("selection models, bias model averaging, isolation-method evidence")
            stages.bias_and_isolation_evidence(run, table, figure_batch)
            bias_moderators_stage(run, table)  # [bias] mods: the ensemble with moderators
            bar.done()
            bar.stage("sensitivity analyses")
            stages.sensitivity(run, table, extraction)
            certainty_stage(run, table)  # summary of findings: certainty.csv, summary_of_findings.docx
            bar.done()
            bar.stage("figures")
            stages.finish_figures(run, figure_batch)
        finally:
            batch_figures.close(figure_batch)  # no worker outlives a failed stage
        prisma_stage.prisma(run)
        bar.done()
        bar.stage("tables, posterior, report")
        run.provenance = _provenance(run, extraction, started)
        _write_outputs(run, table)
        run.provenance["finished"] = dt.datetime.now(dt.UTC).isoformat()
        run.provenance["seconds"] = round(time.perf_counter() - clock, 2)
        run.provenance["outputs"] = sorted(p.name for p in out.iterdir())
        (out / "provenance.json").write_text(
            json.dumps(run.provenance, indent=1, default=str) + "\n", encoding="utf-8"
        )
        bar.done()
    return run


def _provenance(run: RunState, extraction: Any, started: dt.datetime) -> dict[str, Any]:
    """Spec, input hashes, seeds, the Bayesian diagnostics and versions of a run."""
    import evmeta.analysis.prisma_stage as prisma_stage
    import evmeta.analysis.stages as stages

    spec = run.spec
    bayesian = stages.bayesian_diagnostics(run)  # adopted from the worker by finish_figures
    return {
        "analysis": spec.analysis.name,
        "spec_file": str(spec.source),
        "spec": json.loads(spec.model_dump_json(exclude={"source"})),
        "inputs": {
            str(spec.source): _sha256(spec.source),
            str(spec.extraction_path): _sha256(spec.extraction_path),
            **prisma_stage.prisma_inputs(spec),
        },
        "extraction_sha256": extraction.sha256,
        "seeds": {"bayesian": spec.bayesian.seed},
        **({"bayesian": bayesian} if bayesian is not None else {}),
        "versions": versions(),
        "started": started.isoformat(),
    }


def _require_studies(extraction: Any) -> None:
    """An empty workbook is a reviewer's unfinished work, not a programming error: say so."""
    if extraction.studies.empty:
        raise ExtractionError(
            [
                Problem(
                    "studies",
                    None,
                    None,
                    None,
                    "no studies entered: fill the studies sheet (one row per publication) and the "
                    "sheets below it, then run the analysis again",
                )
            ]
        )


def _write_outputs(run: RunState, table: pd.DataFrame) -> None:
    from evmeta.report.html import write_report
    from evmeta.report.results import heterogeneity_table, tidy_results

    out = run.output
    for name, frame in run.tables.csv_files():  # comparisons.csv, bias.csv, sensitivity.csv, ...
        run.files.append(write_csv(frame, out / name))
    run.files.append(write_csv(run.exclusions, out / "exclusions.csv"))
    # Every note validation made (SD-or-SEM signs, unreadable dose texts, fuzzy matches), at its cell.
    run.files.append(write_csv(run.comparisons.validation_notes, out / "validation_notes.csv"))
    run.files.append(write_csv(tidy_results(run.models), out / "results.csv"))
    run.files.append(write_csv(heterogeneity_table(run.models), out / "heterogeneity.csv"))
    run.files.append(write_report(run))  # posterior.nc was written beside the figures


__all__ = ["AnalysisRun", "RunState", "run_analysis"]
