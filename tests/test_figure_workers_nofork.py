"""Figure parallelism lives in one place (issue 21 item 4): the pool of
:mod:`evmeta.analysis.figures`, forked from the main process only. A worker never forks
again, and the files it writes are those drawn in-process."""

from __future__ import annotations

import os

import pytest

from evmeta.analysis import figures as batch_figures
from tests.test_figure_workers import _pages


def _no_fork(*_args, **_kwargs):
    raise AssertionError("os.fork called inside a figure worker")


def _pages_in_a_worker_that_may_not_fork():
    os.fork = _no_fork  # in the worker process only: any later fork while saving fails the job
    return _pages(3)


@pytest.mark.parametrize("workers", ["2", "0"])
def test_multi_page_png_is_written_without_forking_in_the_worker(tmp_path, monkeypatch, workers):
    monkeypatch.setenv("EVMETA_FIGURE_WORKERS", workers)
    draw = _pages_in_a_worker_that_may_not_fork if workers != "0" else (lambda: _pages(3))
    batch = batch_figures.start({"pages": draw}, tmp_path, ("pdf", "svg", "png"))
    paths, notes = batch_figures.collect(batch)
    assert not notes
    assert [p.name for p in paths["pages"]] == [
        "pages.pdf",
        *(f"pages_{i}.svg" for i in (1, 2, 3)),
        *(f"pages_{i}.png" for i in (1, 2, 3)),
    ]
    assert all(p.stat().st_size > 1000 for p in paths["pages"])
