"""Stress test: ``evmeta run analyses/example.toml`` N times while other processes keep every
core busy (issue 21 item 4: figures drawn in forked workers must neither hang nor race).

Run ``.venv/bin/python benchmarks/stress_run.py [--runs 30] [--busy 2]``. Each run is a
fresh process writing into its own temporary folder; the busy processes spin pure Python
loops for the whole time. The script reports how many runs succeeded, their wall times, the
load average, and whether every run wrote byte-identical ``results.csv`` and
``heterogeneity.csv`` (the run is deterministic: seeded sampling, ordered figure workers).
It exits with status 1 when any run failed or differed, and writes its summary into
benchmarks/README.md between the STRESS markers.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
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
COMPARED = ("results.csv", "heterogeneity.csv")
CODE = "import sys; from evmeta.cli import main; sys.argv = ['evmeta', *sys.argv[1:]]; main()"


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x = (x * 1103515245 + 12345) % 2**31


def one_run(spec: Path, timeout: float) -> tuple[bool, float, dict[str, str], str]:
    """(succeeded, seconds, sha256 of the compared files, stderr tail) of one run."""
    out = Path(tempfile.mkdtemp(prefix="stress_run_")) / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CODE, "run", str(spec), "--output", str(out), "--quiet"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        hashes = {
            name: hashlib.sha256((out / name).read_bytes()).hexdigest()
            for name in COMPARED
            if (out / name).exists()
        }
        return done.returncode == 0, seconds, hashes, done.stderr[-500:]
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - start, {}, f"timed out after {timeout:.0f} s"
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def stress(runs: int, busy: int, spec: Path, timeout: float = 300.0) -> dict[str, object]:
    """Run ``spec`` ``runs`` times with ``busy`` spinning processes; a summary dict."""
    stop_at = time.time() + runs * timeout
    spinners = [multiprocessing.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    results, loads = [], []
    try:
        for _ in range(runs):
            results.append(one_run(spec, timeout))
            loads.append(os.getloadavg()[0])
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    hashes = {tuple(sorted(h.items())) for ok, _, h, _ in results if ok}
    return {
        "runs": runs,
        "busy": busy,
        "succeeded": sum(ok for ok, *_ in results),
        "identical": len(hashes) == 1,
        "seconds": [round(s, 1) for _, s, _, _ in results],
        "load": round(statistics.mean(loads), 1),
        "errors": [err for ok, _, _, err in results if not ok],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--busy", type=int, default=2)
    args = parser.parse_args()
    summary = stress(args.runs, args.busy, ROOT / "analyses" / "example.toml")
    seconds = summary["seconds"]
    line = (
        f"{summary['succeeded']} of {summary['runs']} runs succeeded with {summary['busy']} busy processes "
        f"(mean load {summary['load']}); results.csv and heterogeneity.csv identical in every run: "
        f"{'yes' if summary['identical'] else 'NO'}; wall time median {statistics.median(seconds):.1f} s, "
        f"max {max(seconds):.1f} s."
    )
    print(line)
    for error in summary["errors"]:
        print("failed run:", error)
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- STRESS -->", "<!-- /STRESS -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + "\n" + line + "\n" + end + rest.split(end, 1)[1]
        README.write_text(text, encoding="utf-8")
    sys.exit(0 if summary["succeeded"] == summary["runs"] and summary["identical"] else 1)


if __name__ == "__main__":
    main()
