"""Benchmark: the multiverse's inferential (under-the-null) test with 1,000 resamples.

Run ``.venv/bin/python benchmarks/bench_null.py`` (``--refits-only``: part 2 alone). The spec is the bundled example
multiverse (analyses/example_multiverse.toml) restricted to its frequentist models
(random_effects, three_level; the Bayesian quadrature specifications are left out, as
issue 30 asks for "the fitted frequentist specifications"). Measured in one run:

1. the whole process, ``evmeta multiverse SPEC --null-resamples 1000 --workers 2`` (goal:
   <= 10 minutes on 2 cores), with ``uptime`` before and after (the machine is shared);
2. the CPU time per refit of the null test, batched (all resamples of a specification in
   one call) and unbatched (the refit loop), on the same sample of specifications and
   resamples, and the largest difference between the two (they must agree to 1e-10).

The table is written into benchmarks/README.md between the NULL markers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESAMPLES = 1000


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def frequentist_spec(folder: Path) -> Path:
    text = (ROOT / "analyses" / "example_multiverse.toml").read_text(encoding="utf-8")
    text = text.replace(
        '"../extraction/example.xlsx"', f'"{(ROOT / "extraction" / "example.xlsx").as_posix()}"'
    )
    lines = [
        'model = ["random_effects", "three_level"]' if line.startswith("model = ") else line
        for line in text.splitlines()
    ]
    path = folder / "example_multiverse_frequentist.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def whole_process(spec: Path, out: Path) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the process and all its descendants (the Dask
    workers included: sampled every 0.5 s with psutil, the last sample of each process)."""
    import psutil

    evmeta = Path(sys.executable).parent / "evmeta"
    command = [str(evmeta), "multiverse", str(spec), "-o", str(out), "--quiet", "--workers", "2"]
    clock = time.perf_counter()
    process = subprocess.Popen([*command, "--null-resamples", str(RESAMPLES)])
    parent, cpu = psutil.Process(process.pid), {}
    while process.poll() is None:
        try:
            for member in [parent, *parent.children(recursive=True)]:
                times = member.cpu_times()
                cpu[member.pid] = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.5)
    if process.returncode != 0:
        raise SystemExit(f"evmeta multiverse failed with exit code {process.returncode}")
    return time.perf_counter() - clock, sum(cpu.values())


def per_refit(spec: Path, every: int = 12, resamples: int = 4) -> dict[str, float]:
    """CPU ms per refit, batched and unbatched, on every ``every``-th fitted specification."""
    import evmeta as em
    from evmeta.analysis.multiverse import _context
    from evmeta.analysis.multiverse.fit import build_table, fit_one
    from evmeta.analysis.multiverse.null import null_one, study_draws
    from evmeta.analysis.multiverse.plan import plan
    from evmeta.analysis.spec import load_spec

    loaded = load_spec(spec)
    extraction = em.read_extraction(loaded.extraction_path)
    context = _context(loaded)
    planned = [s for s in plan(loaded) if s.status == "planned"]
    by_model: dict[str, list] = {}
    for item in planned:
        by_model.setdefault(item.settings["model"], []).append(item)
    planned = [item for items in by_model.values() for item in items[::every]]  # every model sampled
    tables: dict = {}
    cpu = {"batched": 0.0, "unbatched": 0.0, "batched_1000": 0.0}
    refits, difference, models = 0, 0.0, []
    for item in planned:
        if item.build_key not in tables:
            tables[item.build_key] = build_table(extraction, item.settings)
        built = tables[item.build_key]
        row = fit_one(built, (item.spec_id, item.settings, item.spec_hash), context, {})
        if row["status"] != "ok":
            continue
        studies = sorted(built.table["study_id"].astype(str).unique())
        task = (item.spec_id, item.settings, item.spec_hash, row["estimate"])
        draws = study_draws(studies, RESAMPLES, loaded.multiverse.options.seed)
        results = {}
        for name, subset, batched in (
            ("unbatched", draws[:resamples], False),
            ("batched", draws[:resamples], True),
            ("batched_1000", draws, True),
        ):
            clock = time.process_time()
            results[name] = null_one(built, task, context, subset, studies, {}, batched)
            cpu[name] += time.process_time() - clock
        difference = max(
            difference, float(np.nanmax(np.abs(results["batched"] - results["unbatched"]), initial=0))
        )
        refits += 1
        models.append(item.settings["model"])
    return {
        "specifications": refits,
        "models": pd.Series(models).value_counts().to_dict(),
        "unbatched_ms": 1000 * cpu["unbatched"] / (refits * resamples),
        "batched_ms_small": 1000 * cpu["batched"] / (refits * resamples),
        "batched_ms": 1000 * cpu["batched_1000"] / (refits * RESAMPLES),
        "difference": difference,
    }


def write_section(text: str, name: str) -> None:
    readme = ROOT / "benchmarks" / "README.md"
    content = readme.read_text(encoding="utf-8")
    start, end = f"<!-- {name} START -->", f"<!-- {name} END -->"
    if start in content and end in content:
        head, rest = content.split(start)
        readme.write_text(head + start + "\n" + text + "\n" + end + rest.split(end)[1], encoding="utf-8")


def refit_lines(refit: dict) -> list[str]:
    models = ", ".join(f"{m} {n}" for m, n in refit["models"].items())
    return [
        f"| CPU per refit, refit loop ({refit['specifications']} sampled specifications: {models}; x 4 resamples) | {refit['unbatched_ms']:.2f} ms | |",
        f"| CPU per refit, batched, same specifications, all {RESAMPLES:,} resamples in one call | {refit['batched_ms']:.3f} ms | |",
        f"| refit loop / batched, per refit | {refit['unbatched_ms'] / refit['batched_ms']:.0f}x | |",
        f"| largest difference batched - refit loop (estimate, significance, z; same 4 resamples) | {refit['difference']:.1e} | <= 1e-10 |",
    ]


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench_null_"))
    spec = frequentist_spec(folder)
    if "--refits-only" in sys.argv:  # the per-refit comparison alone (a few minutes)
        before = uptime()
        refit = refit_lines(per_refit(spec))
        text = "\n".join(
            [
                f"- `uptime` before: {before}",
                f"- `uptime` after: {uptime()}",
                "",
                "| what | value | goal |",
                "| --- | --- | --- |",
                *refit,
            ]
        )
        print(text)
        write_section(text, "NULL REFITS")
        return
    before = uptime()
    wall, cpu = whole_process(spec, folder / "out")
    after = uptime()
    fitted = pd.read_csv(folder / "out" / "multiverse.csv")
    ok = fitted[fitted["status"] == "ok"]
    lines = [
        f"Example multiverse, frequentist models only: {len(ok):,} fitted specifications "
        f"({', '.join(f'{m} {n}' for m, n in ok['model'].value_counts().items())}); "
        f"{RESAMPLES:,} resamples = {len(ok) * RESAMPLES:,} refits. {os.cpu_count()} cores, shared with other jobs:",
        "",
        f"- `uptime` before: {before}",
        f"- `uptime` after the whole process: {after}",
        "",
        "| what | value | goal |",
        "| --- | --- | --- |",
        f"| whole process, `evmeta multiverse --null-resamples {RESAMPLES} --workers 2`: wall | {wall / 60:.1f} min | <= 10 min |",
        f"| the same: CPU time of the process and its workers (the work; / 2 = the wall of a quiet 2-core machine) | {cpu / 60:.1f} min | |",
    ]
    text = "\n".join(lines)
    print(text)
    write_section(text, "NULL")


if __name__ == "__main__":
    main()
