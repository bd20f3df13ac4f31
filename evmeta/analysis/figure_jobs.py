"""Which figures a run of :func:`evmeta.run_analysis` draws, from which fitted results, and
how they are handed to the workers of :mod:`evmeta.analysis.figures`.

The figures compute no statistics: every pooled estimate they show was fitted here or in
:mod:`evmeta.analysis.stages` (the forest plot's subgroup fits among them). A figure the
data do not allow is named in a note instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evmeta.analysis.spec import FOREST_GROUP_MIN, AnalysisSpec
from evmeta.analysis.table import levels_present
from evmeta.errors import EvmetaError
from evmeta.harmonize.quality import syrcle_columns

if TYPE_CHECKING:  # the run's state and the results drawn, for the annotations only
    from evmeta.analysis.figures import FigureBatch
    from evmeta.analysis.run_state import RunState
    from evmeta.models.bayes.result import BayesResult
    from evmeta.models.frequentist.subgroup import SubgroupResult

_ROB_ITEMS = syrcle_columns()
#: The grouping ``forest_by = "auto"`` uses when there are enough comparisons.
AUTO_FOREST_BY = "isolation_method"


def check_forest_by(spec: AnalysisSpec, table: pd.DataFrame) -> None:
    """Refuse, before any model is fitted, a ``[figures] forest_by`` the comparisons table
    has no column for (the spec accepted it as a possible moderator column of the reviewer's)."""
    wanted = spec.figures.forest_by
    if wanted is None or wanted == "auto" or wanted in table.columns:
        return
    from rapidfuzz import process

    from evmeta.errors import SpecError

    guess = process.extractOne(wanted, sorted(map(str, table.columns)), score_cutoff=70)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    raise SpecError(
        f"figures.forest_by: {wanted!r} is not a column of the comparisons table (neither a workbook "
        f"column nor a moderator column of the arms sheet){hint}"
    )


def forest_grouping(run: RunState, table: pd.DataFrame) -> tuple[str | None, SubgroupResult | None]:
    """The forest plot's grouping column and the subgroup fits it draws, or (None, None).

    ``[figures] forest_by``: None (``"none"``, ``""``, ``false``) draws no groups; ``"auto"``
    groups by isolation method only with at least :data:`FOREST_GROUP_MIN` comparisons; a
    column whose subgroups cannot be fitted gives the ungrouped forest and a note saying why.
    """
    wanted = run.spec.figures.forest_by
    if wanted is None:
        return None, None
    auto = wanted == "auto"
    by = AUTO_FOREST_BY if auto else wanted
    if auto and len(table) < FOREST_GROUP_MIN:
        return None, None
    if by not in table.columns or levels_present(table, by) < 2:
        if not auto:
            run.notes.append(
                f"forest plot: drawn without subgroups, because every comparison has the same {by} "
                "(or the comparisons have no such column)."
            )
        return None, None
    result = run.models.subgroups.get(by)
    if result is None:
        from evmeta.models import subgroup_analysis

        s = run.spec.frequentist
        try:
            result = subgroup_analysis(table, by, method=s.method, test=s.test, level=s.level)
        except EvmetaError as exc:
            run.notes.append(
                f"forest plot: drawn without subgroups by {by}, because they cannot be fitted ({exc})."
            )
            return None, None
    return by, result


def forest_layout(run: RunState, table: pd.DataFrame) -> dict[str, Any]:
    """``forest_plot`` keywords from ``[figures] forest_layout``, ``forest_rob`` and
    ``forest_dose``, and the words for the treatment (``[analysis] intervention``); risk-of-bias
    dots asked for without any judgements entered give the forest without them and a note
    saying why. Without EV preparations the isolation and dose columns are left out."""
    from evmeta.analysis.intervention import has_ev_preparations

    spec = run.spec.figures
    words = run.spec.analysis
    look: dict[str, Any] = {
        "layout": spec.forest_layout,
        "treatment": words.intervention,
        "treated": words.treated,
    }
    ev = has_ev_preparations(table)
    if not ev:  # no isolation method, and no dose in EV quantities, to show
        look["columns"] = ("label", "n")
    if spec.forest_layout == "evmeta":
        return look
    look["dose"] = spec.forest_dose and ev
    if spec.forest_dose and not ev:
        run.notes.append(
            "forest plot: drawn without the dose column (forest_dose = true), because the extraction "
            "has no EV preparations."
        )
    if spec.forest_rob:
        if table.reindex(columns=_ROB_ITEMS).notna().any().any():
            look["rob"] = True
        else:
            run.notes.append(
                "forest plot: drawn without risk-of-bias dots (forest_rob = true), because no "
                "risk-of-bias judgements are entered."
            )
    return look


def _figure_jobs(run: RunState, table: pd.DataFrame) -> dict[str, Callable[[], Any]]:
    """The frequentist figures the data allow: name -> function that draws it (nothing is drawn
    here); a figure the data do not allow is named in a note instead."""
    from evmeta.plots import dose_response_plot, forest_plot, funnel_plot, moderator_plot, risk_of_bias_plot

    spec = run.spec.figures
    main = run.models.main
    by, forest_subgroups = forest_grouping(run, table)
    forest_look = forest_layout(run, table)
    subgroups = run.models.subgroups.get(by or "isolation_method")
    wanted = {
        "forest": lambda: forest_plot(main, subgroups=forest_subgroups, width=spec.width, **forest_look),
        "funnel": lambda: funnel_plot(main, trim_fill=run.models.trim_and_fill, width="single"),
        "risk_of_bias": lambda: risk_of_bias_plot(table, width=spec.width),
        "dose_response": lambda: dose_response_plot(run.models.dose_response, total=len(table)),
        "moderators": lambda: moderator_plot(subgroups),
    }
    missing = {
        "dose_response": run.models.dose_response is None and "no dose-response model was fitted",
        "moderators": subgroups is None and "no subgroup analysis was fitted",
        "risk_of_bias": not table[_ROB_ITEMS].notna().any().any()
        and "no risk-of-bias judgements are entered",
    }
    for name, why in missing.items():
        if why:
            run.notes.append(f"figure {name}: not drawn, because {why}.")
            wanted.pop(name)
    return wanted


#: Figures that need the bias diagnostics (trim-and-fill): drawn with the posterior figure.
AFTER_BIAS = ("funnel",)


def start_figures(run: RunState, table: pd.DataFrame) -> FigureBatch:
    """Start drawing the frequentist figures in worker processes, as soon as the frequentist
    models are fitted (returns the batch that :func:`finish_figures` waits for). The
    figures of :data:`AFTER_BIAS` wait in the batch for :func:`start_posterior_outputs`."""
    from evmeta.analysis import figures as batch_figures

    jobs = _figure_jobs(run, table)
    later = {name: jobs.pop(name) for name in AFTER_BIAS if name in jobs}
    batch = batch_figures.start(jobs, run.output, tuple(run.spec.figures.formats))
    batch.deferred.update(later)
    return batch


def start_posterior_outputs(run: RunState, batch: FigureBatch) -> None:
    """Once the bias diagnostics and the Bayesian model are fitted: draw the figures that
    waited for them and write ``posterior.nc`` (with the ArviZ import and the refined-grid
    check that go with it) in fresh workers, while the main process fits the bias
    ensembles and the sensitivity analyses."""
    from evmeta.analysis import figures as batch_figures
    from evmeta.plots import posterior_plot

    jobs, tasks = dict(batch.deferred), {}
    batch.deferred.clear()
    bayes = run.models.bayesian
    if bayes is None:
        run.notes.append("figure posterior: not drawn, because no Bayesian model was fitted.")
    else:
        from evmeta._extras import available, install_line

        jobs["posterior"] = lambda: posterior_plot(bayes, width=run.spec.figures.width)
        if available("arviz") and available("h5netcdf"):
            path = run.output / "posterior.nc"
            tasks["posterior.nc"] = lambda: _write_posterior(bayes, path)
        else:
            run.notes.append(
                "posterior.nc: not written, because it needs ArviZ and h5netcdf, which are not "
                f"installed; install them with: {install_line('sampling')}"
            )
    batch_figures.add(batch, jobs, tasks)


def _write_posterior(bayes: BayesResult, path: Path) -> dict[str, Any]:
    """Write the InferenceData to ``path``; returns the fit's diagnostics (computed here)."""
    if path.exists():
        path.unlink()
    bayes.idata.to_netcdf(str(path))
    return bayes.diagnostics


def finish_figures(run: RunState, batch: FigureBatch) -> None:
    """Wait for the figures and for ``posterior.nc``."""
    from evmeta.analysis import figures as batch_figures

    bayes = run.models.bayesian
    if bayes is not None and "posterior.nc" in batch.tasks:
        bayes.adopt_diagnostics(batch_figures.result(batch, "posterior.nc"))
        run.files.append(run.output / "posterior.nc")
    paths, notes = batch_figures.collect(batch)
    order = [
        "forest",
        "funnel",
        "risk_of_bias",
        "dose_response",
        "moderators",
        "posterior",
        "bias_panel",
        "isolation_evidence",
    ]
    run.figures.update({name: paths[name] for name in order if name in paths})
    run.notes.extend(notes)
