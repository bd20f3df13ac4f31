"""Draw figures (and other slow output) in forked worker processes while the main process goes on.

Each figure is laid out once and every format (PDF, SVG, PNG) is rendered from that
layout. Workers are forked from the main process only (never from a worker), so they
inherit everything fitted so far and nothing is pickled but the job's name and what it
returns; the files written do not depend on the number of workers. Every call to :func:`add` forks a fresh
worker that sees the models fitted up to that moment: the frequentist figures are drawn
while the Bayesian model and the bias ensembles run, the posterior figure and
``posterior.nc`` while the sensitivity analyses run; :func:`collect` waits for them all.
``EVMETA_FIGURE_WORKERS=0`` does everything in the main process instead.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evmeta.errors import EvmetaError

#: The jobs of the run being drawn; forked workers read their job from here by name.
_JOBS: dict[str, Callable[[], Any]] = {}
#: A figure the data do not allow raises one of evmeta's own errors, whose message says why;
#: anything else is a bug and surfaces as a traceback instead of a "not drawn" note.
EXPECTED = (EvmetaError,)
#: What drawing one figure gives: the files written, or a note saying why it was not drawn.
_Drawn = tuple[list[Path], str | None]


def _draw_and_save(name: str, stem: str, formats: tuple[str, ...]) -> _Drawn:
    """Draw figure ``name`` and write every format from its one layout. The worker itself
    never forks (a process forked inside a pool worker inherited a half-initialized state:
    issue 21's "h5py backend not available"); the pool is the only parallelism."""
    from evmeta.plots import save_figure

    try:
        figure = _JOBS[name]()
    except EXPECTED as exc:
        return [], f"figure {name}: not drawn ({exc})"
    return save_figure(figure, stem, formats), None


def _run_task(name: str) -> Any:
    return _JOBS[name]()


def limit_blas_threads() -> AbstractContextManager[object]:
    """One BLAS thread per process while figure workers share the cores: OpenBLAS threads
    spin while they wait, taking the cores the workers need (about 10% of a run's CPU).
    The limit is lifted when the block ends; without workers nothing changes."""
    if _workers() == 0:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")  # untyped package
    return limits


def _workers() -> int:
    wanted = os.environ.get("EVMETA_FIGURE_WORKERS")
    if wanted is not None:
        return max(0, int(wanted))
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    # Two workers even on two cores: the main process's later stages and the workers'
    # figures then share both cores to the end, rather than one worker's queue of
    # figures finishing alone after the models are done.
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(4, max(2, cores - 1))


@dataclass
class FigureBatch:
    """Work under way: figure name -> future (or the finished result when done in-process),
    and tasks (name -> future or value) whose results the main process needs back."""

    output: Path
    formats: tuple[str, ...]
    pending: dict[str, Future[_Drawn] | _Drawn] = field(default_factory=dict)
    tasks: dict[str, Future[Any] | Any] = field(default_factory=dict)
    #: Figures to draw later, once the models they need are fitted (name -> function).
    deferred: dict[str, Callable[[], Any]] = field(default_factory=dict)
    pools: list[ProcessPoolExecutor] = field(default_factory=list)


def _import_plotting() -> None:
    """Import the figure modules and the three backends once, before the first fork, so
    that every worker inherits them instead of importing them again (about 0.4 s each)."""
    import matplotlib.backends.backend_agg
    import matplotlib.backends.backend_pdf
    import matplotlib.backends.backend_svg  # noqa: F401

    import evmeta.plots  # noqa: F401


def start(jobs: dict[str, Callable[[], Any]], output: Path, formats: tuple[str, ...]) -> FigureBatch:
    """Start drawing ``jobs`` (name -> function returning a Figure or FigurePages)."""
    batch = FigureBatch(output, tuple(formats))
    if _workers() > 0:
        _import_plotting()
    add(batch, jobs)
    return batch


def add(
    batch: FigureBatch,
    jobs: dict[str, Callable[[], Any]],
    tasks: dict[str, Callable[[], Any]] | None = None,
) -> None:
    """Draw ``jobs`` and run ``tasks`` (name -> function; its return value, which must
    pickle, comes back from :func:`result`) in a worker forked now, so that it sees every
    model fitted so far."""
    tasks = tasks or {}
    if not jobs and not tasks:
        return
    _JOBS.update(jobs)
    _JOBS.update(tasks)
    workers = min(_workers(), len(jobs) + len(tasks))
    pool = None
    if workers > 0:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
        batch.pools.append(pool)
    if pool:
        # The workers fork at the first submit. Objects frozen then are never traversed by
        # the workers' garbage collector, which would otherwise touch (and so copy) every
        # page of the inherited heap.
        # (A caller that froze objects itself keeps them frozen.)
        ours = gc.get_freeze_count() == 0
        if ours:
            gc.freeze()
        try:
            # Tasks first: the main process awaits their results before the figures.
            for name in tasks:
                batch.tasks[name] = pool.submit(_run_task, name)
            for name in jobs:
                batch.pending[name] = pool.submit(
                    _draw_and_save, name, str(batch.output / name), batch.formats
                )
        finally:
            if ours:
                gc.unfreeze()
        return
    for name in tasks:
        batch.tasks[name] = _run_task(name)
    for name in jobs:
        batch.pending[name] = _draw_and_save(name, str(batch.output / name), batch.formats)


def result(batch: FigureBatch, name: str) -> Any:
    """The return value of task ``name`` (waits for it; done here if its worker died)."""
    item = batch.tasks[name]
    if not isinstance(item, Future):
        return item
    try:
        return item.result()
    except BrokenProcessPool:  # killed (out of memory, a signal): the work is deterministic
        return _run_task(name)


def collect(batch: FigureBatch) -> tuple[dict[str, list[Path]], list[str]]:
    """Wait for every figure; returns the paths per figure and notes for figures not drawn."""
    paths: dict[str, list[Path]] = {}
    notes: list[str] = []
    try:
        for name, item in batch.pending.items():
            if isinstance(item, Future):
                try:
                    item = item.result()
                except BrokenProcessPool:  # its worker was killed: draw it here instead
                    item = _draw_and_save(name, str(batch.output / name), batch.formats)
            written, note = item
            if note:
                notes.append(note)
            else:
                paths[name] = written
    finally:
        close(batch)
    return paths, notes


def close(batch: FigureBatch) -> None:
    """Shut the workers down (after :func:`collect`, or when the run fails)."""
    for pool in batch.pools:
        pool.shutdown(wait=True, cancel_futures=True)
    batch.pools.clear()
    _JOBS.clear()
