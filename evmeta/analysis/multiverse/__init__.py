"""Multiverse analysis on Dask: ``evmeta.run_multiverse("analyses/example_multiverse.toml")``.

Plan (the cross product of the ``[multiverse]`` choices, senseless combinations skipped with
their reason) -> build each distinct comparisons table once (one task per table) -> fit
batches of specifications sharing a table (one task per batch) -> optional under-the-null
resampling test -> ``multiverse.csv``, the specification curve, ``multiverse.html``.

Execution: a local ``dask.distributed`` cluster sized to the machine by default, an existing
cluster given its scheduler address, a ``Client`` passed in, or ``scheduler="serial"`` (the
same functions in this process: the reference the Dask runs are tested against). Results do
not depend on the number of workers or the batching: every fit is deterministic given its
settings and the seeds are derived from each specification's hash.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from evmeta._extras import require
from evmeta.analysis.multiverse.fit import BuiltTable, FitContext, build_table, fit_batch
from evmeta.analysis.multiverse.plan import Specification, check_size, choice_lists, plan
from evmeta.analysis.multiverse.run import MultiverseRun
from evmeta.analysis.multiverse.summary import choice_influence, curve_summary
from evmeta.analysis.spec import AnalysisSpec, MultiverseOptions, load_spec
from evmeta.errors import SchedulerError, SpecError
from evmeta.models.priors import prior_dict

if TYPE_CHECKING:  # the progress display is imported only when shown
    from rich.progress import Progress, TaskID

_R = TypeVar("_R")

#: Relative cost of one fit (random effects = 1), for sizing batches.
COST = {"random_effects": 1.0, "three_level": 12.0, "bayes_quadrature": 60.0}
#: Smallest batch worth a task (in random-effects fits, ~1-3 ms each): keeps the scheduler's
#: per-task overhead (~1 ms) small next to the work.
MIN_TASK_COST = 40.0
RESULT_COLUMNS = ["k", "estimate", "ci_low", "ci_high", "p", "tau2", "i2", "fingerprint", "status", "reason"]


def _distributed() -> ModuleType:
    """dask.distributed, or a sentence naming ``evmeta[distributed]``."""
    return require("distributed", "evmeta multiverse (Dask)")


#: Seconds a scheduler has to connect and greet (a port that accepts and never answers
#: would otherwise keep the client waiting forever).
SCHEDULER_HANDSHAKE_TIMEOUT = 15.0


def _probe_scheduler(address: str, timeout: float | None = None) -> None:
    """A ``tcp://host:port`` scheduler must accept and send its handshake within ``timeout``
    seconds (a Dask server writes first); other schemes are left to Dask."""
    import socket
    import time
    from urllib.parse import urlsplit

    timeout = SCHEDULER_HANDSHAKE_TIMEOUT if timeout is None else timeout
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp":
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise SchedulerError(f"--scheduler {address!r}: not an address such as tcp://host:8786") from None
    if not host or not port:
        raise SchedulerError(f"--scheduler {address!r}: not an address such as tcp://host:8786")
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(max(0.1, timeout - (time.monotonic() - started)))
            greeting = sock.recv(1)
    except TimeoutError:
        raise SchedulerError(
            f"the Dask scheduler {address!r} accepted the connection but did not answer within "
            f"{timeout:g} s; is it a Dask scheduler?"
        ) from None
    except OSError as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler {address!r}: {exc.strerror or exc}") from None
    if not greeting:
        raise SchedulerError(f"the Dask scheduler {address!r} closed the connection without a handshake")


def _remote_client(address: str) -> Any:  # a distributed.Client (optional dependency)
    Client = _distributed().Client

    _probe_scheduler(address)
    try:
        return Client(address, timeout=f"{SCHEDULER_HANDSHAKE_TIMEOUT:g}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler {address!r}: {exc}") from None


def _options(spec: AnalysisSpec) -> MultiverseOptions:
    """The spec's ``[multiverse.options]`` (a spec without ``[multiverse]`` cannot get here)."""
    if spec.multiverse is None:
        raise SpecError(f"{spec.source}: no [multiverse] section; add one to run a multiverse")
    return spec.multiverse.options


def _context(spec: AnalysisSpec) -> FitContext:
    b, options = spec.bayesian, _options(spec)
    return FitContext(
        min_k=options.min_k,
        outlier_method=spec.frequentist.method,
        outlier_test=spec.frequentist.test,
        bayes_random=tuple(b.random) if b.random else None,
        bayes_priors=tuple(sorted(prior_dict(b.priors).items())),
        bayes_draws=max(100, min(b.draws, 1000)),
        seed=options.seed,
        level=spec.frequentist.level,
    )


def make_batches(
    specs: list[Specification], n_workers: int, batch_size: int | None = None
) -> list[tuple[str, list[Specification]]]:
    """Batches of planned specifications, each sharing one comparisons table.

    Within a table the specifications are ordered by filtered table so a batch reuses its
    filtered tables and outlier sets. Batches aim at about four per worker, but never below
    ``MIN_TASK_COST`` (or exactly ``batch_size`` specifications when given).
    """
    groups: dict[str, list[Specification]] = {}
    for item in specs:
        groups.setdefault(item.build_key, []).append(item)
    total = sum(COST[s.model] for s in specs)
    target = max(total / (4 * max(n_workers, 1)), MIN_TASK_COST)
    batches: list[tuple[str, list[Specification]]] = []
    for key, members in groups.items():
        members = sorted(members, key=lambda s: (s.table_key, s.spec_id))
        batch: list[Specification] = []
        cost = 0.0
        for item in members:
            batch.append(item)
            cost += COST[item.model]
            if (batch_size and len(batch) >= batch_size) or (not batch_size and cost >= target):
                batches.append((key, batch))
                batch, cost = [], 0.0
        if batch:
            batches.append((key, batch))
    return batches


class _Bar:
    """A rich progress bar over specifications (silent when quiet)."""

    def __init__(self, quiet: bool) -> None:
        self._progress: Progress | None = None
        if not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            )

    def __enter__(self) -> _Bar:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def task(self, description: str, total: int) -> TaskID | None:
        return self._progress.add_task(description, total=total) if self._progress is not None else None

    def advance(self, task: TaskID | None, n: int) -> None:
        if self._progress is not None and task is not None:
            self._progress.advance(task, n)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


#: Imported once in the fork server the local workers start from (instead of in each worker).
WORKER_PRELOAD = [
    "distributed",
    "pandas",
    "scipy.stats",
    "evmeta.comparisons",
    "evmeta.analysis.multiverse.fit",
    "evmeta.models.frequentist.meta",
]


def _local_client(workers: int | None) -> tuple[Any, Any]:
    """A local cluster of single-threaded worker processes, one per core by default.

    Workers are forked from a fork server that has imported numpy, pandas, scipy and the
    multiverse modules once (where the platform has one), which on 2 loaded cores halves the
    start-up time against spawning interpreters that each import everything.
    """
    import multiprocessing

    distributed = _distributed()
    dask = require("dask", "evmeta multiverse (Dask)")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = workers or cores or 1
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "forkserver":
        multiprocessing.set_forkserver_preload(WORKER_PRELOAD)
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: 8787 may belong to another cluster
            silence_logs=logging.ERROR,
        )
    return Client(cluster), cluster


@contextmanager
def _dask_client(client: Any, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """The client to run on (None: serial); clusters and clients made here are closed after."""
    if client is not None or scheduler == "serial":
        yield client
        return
    cluster = None
    if scheduler:
        client = _remote_client(scheduler)
    else:
        client, cluster = _local_client(workers)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class _Executor:
    """Runs the two kinds of task serially or on a Dask client."""

    def __init__(self, client: Any = None) -> None:
        self.client = client

    @property
    def n_workers(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def map_tables(self, extraction: Any, settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if self.client is None:
            return {key: build_table(extraction, s) for key, s in settings.items()}
        remote = self.client.scatter(extraction, broadcast=False)
        return {key: self.client.submit(build_table, remote, s, pure=False) for key, s in settings.items()}

    def run(
        self,
        function: Callable[..., _R],
        tables: dict[str, Any],
        batches: list[tuple[str, Any]],
        args: tuple[Any, ...],
        bar: _Bar,
        task: TaskID | None,
        count: Callable[[_R], int],
    ) -> Iterator[_R]:
        """Call ``function(table, batch, *args)`` for each batch; yields results as they finish."""
        if self.client is None:
            for key, batch in batches:
                result = function(tables[key], batch, *args)
                bar.advance(task, count(result))
                yield result
            return
        as_completed = _distributed().as_completed

        futures = [
            self.client.submit(function, tables[key], batch, *args, pure=False) for key, batch in batches
        ]
        for _, result in as_completed(futures, with_results=True):
            bar.advance(task, count(result))
            yield result

    def gather_tables(self, tables: dict[str, Any]) -> dict[str, BuiltTable]:
        return (
            tables
            if self.client is None
            else dict(zip(tables, self.client.gather(list(tables.values())), strict=True))
        )


def _choice_text(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else json.dumps(value)


def results_frame(specs: list[Specification], rows: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    """``multiverse.csv``: one row per specification (planned-and-skipped ones included)."""
    fitted = {row["spec_id"]: row for row in rows}
    records = []
    for item in specs:
        record = {"spec_id": item.spec_id, **{k: _choice_text(item.choices[k]) for k in keys}}
        if item.status == "skipped":
            record.update(status="skipped", reason=item.reason)
        else:
            record.update(fitted[item.spec_id])
        record["spec_hash"] = item.spec_hash[:16]
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for column in [*RESULT_COLUMNS, "measure_used", "n_outliers"]:
        if column not in frame.columns:
            frame[column] = np.nan
    timing = sorted(c for c in frame.columns if c.startswith("seconds_"))
    ordered = ["spec_id", *keys, *RESULT_COLUMNS, "measure_used", "n_outliers", "spec_hash", *timing]
    return frame[ordered]


def execute(
    spec: AnalysisSpec,
    extraction: Any,
    specs: list[Specification],
    executor: _Executor,
    *,
    null_resamples: int = 0,
    quiet: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, float]]:
    """Fit every planned specification (and the null test); returns results, test, timings."""
    keys = list(choice_lists(spec))
    context = _context(spec)
    planned = [s for s in specs if s.status == "planned"]
    clock = {"start": time.perf_counter()}
    batches = make_batches(planned, executor.n_workers, _options(spec).batch_size)
    firsts: dict[Any, Any] = {}
    for item in planned:
        firsts.setdefault(item.build_key, item.settings)
    tables = executor.map_tables(extraction, firsts)
    rows: list[dict[str, Any]] = []
    with _Bar(quiet) as bar:
        task = bar.task("specifications", len(planned))
        items = [(key, [(s.spec_id, s.settings, s.spec_hash) for s in batch]) for key, batch in batches]
        for result in executor.run(fit_batch, tables, items, (context,), bar, task, len):
            rows.extend(result)
        clock["fits"] = time.perf_counter()
        frame = results_frame(specs, rows, keys)
        test = None
        if null_resamples > 0:
            test = _run_null(frame, specs, batches, tables, executor, context, null_resamples, bar)
    clock["end"] = time.perf_counter()
    built = executor.gather_tables(tables)
    timings = {
        "fit_phase_seconds": clock["fits"] - clock["start"],
        "null_phase_seconds": clock["end"] - clock["fits"],
        "build_seconds_total": float(sum(b.build_seconds for b in built.values())),
        "tables_built": len(built),
        "tasks": len(batches),
    }
    return frame, test, timings


def _run_null(
    frame: pd.DataFrame,
    specs: list[Specification],
    batches: list[tuple[str, list[Specification]]],
    tables: dict[str, Any],
    executor: _Executor,
    context: FitContext,
    resamples: int,
    bar: _Bar,
) -> pd.DataFrame | None:
    from evmeta.analysis.multiverse.null import null_batch, null_test, study_draws

    ok = frame[frame["status"] == "ok"].sort_values("spec_id")
    if ok.empty:
        return None
    estimates = dict(zip(ok["spec_id"], ok["estimate"], strict=True))
    built = executor.gather_tables(tables)
    studies = sorted({str(s) for b in built.values() for s in b.table["study_id"]})
    draws = study_draws(studies, resamples, context.seed)
    items = []
    for key, batch in batches:
        chosen = [
            (s.spec_id, s.settings, s.spec_hash, estimates[s.spec_id])
            for s in batch
            if s.spec_id in estimates
        ]
        if chosen:
            items.append((key, chosen))
    task = bar.task(f"null resampling ({resamples} curves)", len(ok))
    null: dict[int, np.ndarray] = {}
    for result in executor.run(null_batch, tables, items, (context, draws, studies), bar, task, len):
        null.update(result)
    return null_test(ok, null)


__all__ = ["MultiverseRun", "SchedulerError", "execute", "make_batches", "results_frame", "run_multiverse"]


def run_multiverse(
    path: str | Path,
    *,
    output: str | Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    null_resamples: int | None = None,
    quiet: bool = False,
    figures: bool = True,
) -> MultiverseRun:
    """Run the ``[multiverse]`` of an analysis spec and write its outputs.

    Parameters
    ----------
    path : str or Path
        An analysis spec with a ``[multiverse]`` section.
    output : str or Path, optional
        Folder to write (default: the spec's report folder, ``reports/<name>``).
    scheduler : str, optional
        Address of an existing ``dask.distributed`` scheduler (``tcp://host:8786``), or
        ``"serial"`` to run in this process without Dask. Default: a local cluster.
    workers : int, optional
        Workers of the local cluster (default: one per CPU core; one thread each).
    client : distributed.Client, optional
        Use this client (tests pass an in-process cluster's client).
    null_resamples : int, optional
        Resamples of the inferential specification-curve test (default: the spec's
        ``[multiverse.options] null_resamples``; 0 = no test).
    quiet : bool
        No progress bar.
    figures : bool
        Draw the specification curve.

    Returns
    -------
    MultiverseRun

    Raises
    ------
    SpecError
        No ``[multiverse]`` section, or bad choices (named by key).
    """
    from evmeta.analysis.multiverse.output import write_outputs
    from evmeta.schema.validation.validate import read_extraction

    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    spec = load_spec(path)
    if spec.multiverse is None:
        raise SpecError(f"{spec.source}: no [multiverse] section; it lists the choices to cross")
    resamples = spec.multiverse.options.null_resamples if null_resamples is None else null_resamples
    check_size(spec, resamples)  # before planning, reading or writing anything
    out = Path(output).resolve() if output else spec.output_path
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(spec)
    extraction = read_extraction(spec.extraction_path)
    with _dask_client(client, scheduler, workers) as active:
        executor = _Executor(active)
        workers_used = executor.n_workers
        frame, test, timings = execute(
            spec, extraction, specs, executor, null_resamples=resamples, quiet=quiet
        )
    run = MultiverseRun(
        spec, out, frame, curve_summary(frame), choice_influence(frame, list(choice_lists(spec)))
    )
    run.null_test = test
    run.provenance = {
        "analysis": spec.analysis.name,
        "spec_file": str(spec.source),
        "extraction_sha256": extraction.sha256,
        "scheduler": "client given" if client is not None else (scheduler or "local cluster"),
        "workers": workers_used,
        "seed": spec.multiverse.options.seed,
        "null_resamples": resamples,
        "started": started.isoformat(),
        **timings,
    }
    write_outputs(run, figures=figures)
    run.provenance["seconds"] = round(time.perf_counter() - clock, 2)
    return run
