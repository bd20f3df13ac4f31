"""Draw and save the run's figures in worker processes, while the main process goes on.

Each figure is laid out once and every format (PDF, SVG, PNG) is rendered from that
layout. Workers are forked (they inherit the fitted models, nothing is pickled but the
figure's name and the paths written), so the frequentist figures are drawn while the
Bayesian model and the sensitivity analyses run; :func:`collect` waits for them.
``EVMETA_FIGURE_WORKERS=0`` draws everything in the main process instead.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evmeta.errors import ModelError

#: The jobs of the run being drawn; forked workers read their job from here by name.
_JOBS: dict[str, Callable[[], Any]] = {}
EXPECTED = (KeyError, ValueError, ModelError)


def _draw_and_save(name: str, stem: str, formats: tuple[str, ...]) -> tuple[list[Path], str | None]:
    from evmeta.plots import save_figure

    try:
        figure = _JOBS[name]()
    except EXPECTED as exc:
        return [], f"figure {name}: not drawn ({exc})"
    return save_figure(figure, stem, formats), None


def _workers() -> int:
    wanted = os.environ.get("EVMETA_FIGURE_WORKERS")
    if wanted is not None:
        return max(0, int(wanted))
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    # One core stays with the main process (Bayesian model, sensitivity analyses).
    return min(2, (os.cpu_count() or 1) - 1)


@dataclass
class FigureBatch:
    """Figures being drawn: name -> future (or finished result when drawn in-process)."""

    output: Path
    formats: tuple[str, ...]
    pending: dict[str, Future | tuple[list[Path], str | None]] = field(default_factory=dict)
    pool: ProcessPoolExecutor | None = None


def start(jobs: dict[str, Callable[[], Any]], output: Path, formats: tuple[str, ...]) -> FigureBatch:
    """Start drawing ``jobs`` (name -> function returning a Figure or FigurePages)."""
    batch = FigureBatch(output, tuple(formats))
    add(batch, jobs)
    return batch


def add(batch: FigureBatch, jobs: dict[str, Callable[[], Any]]) -> None:
    """Add figures to a batch. The first call forks the workers; figures added later (the
    posterior, once the Bayesian model is fitted) are drawn in this process, which would
    otherwise only wait, because the workers cannot see models fitted after the fork."""
    _JOBS.update(jobs)
    workers = _workers()
    fork_now = workers > 0 and batch.pool is None and not batch.pending
    if fork_now:
        batch.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    for name in jobs:
        stem = str(batch.output / name)
        if fork_now:
            batch.pending[name] = batch.pool.submit(_draw_and_save, name, stem, batch.formats)
        else:
            batch.pending[name] = _draw_and_save(name, stem, batch.formats)


def collect(batch: FigureBatch) -> tuple[dict[str, list[Path]], list[str]]:
    """Wait for every figure; returns the paths per figure and notes for figures not drawn."""
    paths: dict[str, list[Path]] = {}
    notes: list[str] = []
    try:
        for name, item in batch.pending.items():
            written, note = item.result() if isinstance(item, Future) else item
            if note:
                notes.append(note)
            else:
                paths[name] = written
    finally:
        if batch.pool is not None:
            batch.pool.shutdown(wait=True)
        _JOBS.clear()
    return paths, notes
