"""Benchmark: ``evmeta run analyses/example.toml`` as a whole process, this checkout against
a baseline commit, side by side.

Run ``.venv/bin/python benchmarks/bench_run.py [--baseline COMMIT] [--repeats N]``. The
baseline is checked out with ``git worktree`` into a temporary folder and run with the same
Python (its package first on ``PYTHONPATH``); runs alternate baseline / current so that a
machine shared with other work loads both alike. Each run is a fresh process (imports,
models, figures in PDF, SVG and PNG, report) writing into a temporary folder; the wall
time, the machine's load average and the ratio of medians are printed and written into
benchmarks/README.md between the RUN markers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "benchmarks" / "README.md"
DEFAULT_BASELINE = "49369a5"  # the layout commit this issue started from


def one_run(checkout: Path, spec: Path, env_extra: dict[str, str] | None = None) -> float:
    """Wall time (s) of one ``evmeta run`` process from ``checkout``."""
    out = Path(tempfile.mkdtemp(prefix="bench_run_"))
    env = {**os.environ, "PYTHONPATH": str(checkout), **(env_extra or {})}
    # What the `evmeta` console script runs (its entry point, evmeta.cli:main).
    code = "import sys; from evmeta.cli import main; sys.argv = ['evmeta', *sys.argv[1:]]; main()"
    start = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-c", code, "run", str(spec), "--output", str(out), "--quiet"],
            cwd=checkout,
            env=env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base_dir = Path(tempfile.mkdtemp(prefix="bench_baseline_"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(base_dir), args.baseline],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        times: dict[str, list[float]] = {"baseline": [], "current": [], "current, figures in-process": []}
        loads = []
        for _ in range(args.repeats):
            loads.append(os.getloadavg()[0])
            times["baseline"].append(one_run(base_dir, base_dir / "analyses" / "example.toml"))
            times["current"].append(one_run(ROOT, ROOT / "analyses" / "example.toml"))
            times["current, figures in-process"].append(
                one_run(ROOT, ROOT / "analyses" / "example.toml", {"EVMETA_FIGURE_WORKERS": "0"})
            )
            loads.append(os.getloadavg()[0])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_dir)], cwd=ROOT, check=False)
    base = statistics.median(times["baseline"])
    rows = [
        f"| {name} | {' / '.join(f'{t:.1f}' for t in values)} s | {statistics.median(values):.1f} s | "
        f"{statistics.median(values) / base:.2f} |"
        for name, values in times.items()
    ]
    table = "\n".join(
        [
            f"Baseline commit {args.baseline}; {args.repeats} alternating runs; "
            f"1-minute load average during the runs {min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} cores.",
            "",
            "| code | runs | median | ratio to baseline |",
            "| --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(table)
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- RUN START -->", "<!-- RUN END -->"
    if start in text and end in text:
        text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end) :]
        README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
