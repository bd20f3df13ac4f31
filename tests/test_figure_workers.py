"""The forked workers of `evmeta run` (issue 14's speed goal): figures and tasks drawn beside
the main process give the same files and values as drawing in-process."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.analysis import figures as batch_figures
from evmeta.plots._style import FigurePages, new_figure, page_paths, save_figure


def _pages(n: int) -> FigurePages:
    pages = FigurePages()
    for number in range(n):
        figure = new_figure("single", 1.0)
        axis = figure.add_axes((0.1, 0.2, 0.8, 0.7))
        axis.plot([0, 1], [number, number + 1])
        axis.set_title(f"page {number + 1}")
        pages.append(figure)
    return pages


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setenv("EVMETA_FIGURE_WORKERS", "2")


def test_tasks_and_multi_page_figures_come_back_from_forked_workers(tmp_path, two_workers):
    batch = batch_figures.start({"pages": lambda: _pages(2)}, tmp_path, ("pdf", "svg", "png"))
    batch_figures.add(batch, {}, tasks={"where": lambda: {"pid": os.getpid(), "value": 42}})
    answer = batch_figures.result(batch, "where")
    paths, notes = batch_figures.collect(batch)
    assert answer["value"] == 42 and answer["pid"] != os.getpid()  # ran in a worker
    assert not notes
    # The worker wrote every format itself (it never forks); the list names every file written,
    # in the order of the formats, exactly as save_figure in this process would.
    expected = [*page_paths(tmp_path / "pages", 2, "pdf"), *page_paths(tmp_path / "pages", 2, "svg")]
    expected += page_paths(tmp_path / "pages", 2, "png")
    assert paths["pages"] == expected
    assert all(path.stat().st_size > 1000 for path in expected)
    in_process = save_figure(_pages(2), tmp_path / "again" / "pages")
    assert [path.name for path in in_process] == [path.name for path in expected]
    assert not batch.pools  # collect shut the workers down


def test_each_add_forks_workers_that_see_what_was_fitted_before_it(tmp_path, two_workers):
    fitted = {"model": "first"}
    batch = batch_figures.start({}, tmp_path, ("svg",))
    batch_figures.add(batch, {}, tasks={"early": lambda: fitted["model"]})
    fitted["model"] = "second"  # fitted after the first fork
    batch_figures.add(batch, {}, tasks={"late": lambda: fitted["model"]})
    assert batch_figures.result(batch, "early") == "first"
    assert batch_figures.result(batch, "late") == "second"
    batch_figures.close(batch)


def test_a_figure_that_cannot_be_drawn_is_a_note(tmp_path, two_workers):
    def broken():
        raise em.ModelError("no subgroup has two comparisons")

    batch = batch_figures.start({"moderators": broken}, tmp_path, ("png",))
    paths, notes = batch_figures.collect(batch)
    assert paths == {} and notes == ["figure moderators: not drawn (no subgroup has two comparisons)"]


def test_without_workers_everything_is_done_in_this_process(tmp_path, monkeypatch):
    monkeypatch.setenv("EVMETA_FIGURE_WORKERS", "0")
    batch = batch_figures.start({"pages": lambda: _pages(2)}, tmp_path, ("svg", "png"))
    batch_figures.add(batch, {}, tasks={"where": lambda: os.getpid()})
    assert batch_figures.result(batch, "where") == os.getpid()
    paths, _ = batch_figures.collect(batch)
    assert paths["pages"] == [
        *page_paths(tmp_path / "pages", 2, "svg"),
        *page_paths(tmp_path / "pages", 2, "png"),
    ]
    assert not batch.pools


def test_blas_runs_one_thread_while_workers_share_the_cores(two_workers):
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    with batch_figures.limit_blas_threads():
        assert set(blas_threads()) <= {1}
    assert blas_threads() == before


def test_diagnostics_computed_in_a_worker_are_those_of_the_fit():
    """`evmeta run` computes the Bayesian fit's diagnostics (ArviZ, refined grid) in the
    worker that writes posterior.nc and hands them back; they must be the fit's own."""
    rng = np.random.default_rng(3)
    k = 12
    table = pd.DataFrame(
        {
            "yi": rng.normal(0.4, 0.3, k),
            "vi": rng.uniform(0.02, 0.1, k),
            "study_id": [f"S{i // 2}" for i in range(k)],
            "experiment_id": [f"S{i // 2}-E{i % 2}" for i in range(k)],
        }
    )
    fit = em.bayesian_meta_analysis(table, method="quadrature", seed=1)
    twin = em.bayesian_meta_analysis(table, method="quadrature", seed=1)
    computed = twin.diagnostics  # as the worker computes them
    fit.adopt_diagnostics(computed)
    assert fit.diagnostics == computed
    assert fit.quadrature.refinement_error == computed["grid_error"]
    assert 0 <= computed["grid_error"] < 1e-3
    # Computed here instead, they are the same numbers (the fit is deterministic).
    third = em.bayesian_meta_analysis(table, method="quadrature", seed=1)
    assert third.quadrature.refinement_error == pytest.approx(computed["grid_error"], rel=1e-9, abs=1e-15)


def test_a_worker_that_dies_is_replaced_by_this_process(tmp_path, two_workers):
    import signal

    main = os.getpid()

    def killed_in_worker():
        if os.getpid() != main:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        return "done here"

    def figure_killed_in_worker():
        if os.getpid() != main:
            os.kill(os.getpid(), signal.SIGKILL)
        return _pages(1)[0]

    batch = batch_figures.start({"figure": figure_killed_in_worker}, tmp_path, ("svg",))
    batch_figures.add(batch, {}, tasks={"task": killed_in_worker})
    assert batch_figures.result(batch, "task") == "done here"
    paths, notes = batch_figures.collect(batch)
    assert paths["figure"] == [tmp_path / "figure.svg"] and not notes


def test_a_bug_in_a_figure_is_a_traceback_not_a_note(tmp_path, monkeypatch):
    monkeypatch.setenv("EVMETA_FIGURE_WORKERS", "0")

    def buggy():
        return {}["dose_response"]  # a coding error, not a property of the data

    with pytest.raises(KeyError):  # drawn at once without workers
        batch_figures.collect(batch_figures.start({"funnel": buggy}, tmp_path, ("svg",)))
    monkeypatch.setenv("EVMETA_FIGURE_WORKERS", "2")
    batch = batch_figures.start({"funnel": buggy}, tmp_path, ("svg",))
    with pytest.raises(KeyError):  # raised in the worker, re-raised here
        batch_figures.collect(batch)
