"""Benchmark: build_comparisons on a simulated extraction of about 10,000 outcome rows.

Run ``.venv/bin/python benchmarks/bench_harmonize.py``; the result is recorded by hand in
benchmarks/README.md. Goal (issue 3): under 2 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._simulate import replicate_example
from evmeta.comparisons import build_comparisons


def main(copies: int = 31, repeats: int = 3) -> None:
    extraction = replicate_example(copies)
    n_outcomes = len(extraction.outcomes)
    start = time.perf_counter()
    build_comparisons(extraction)  # cold: builds the pint registry and the dose-string cache
    cold = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = build_comparisons(extraction)
        times.append(time.perf_counter() - start)
    print(
        f"build_comparisons: {n_outcomes} outcome rows, {len(result.table)} comparisons, "
        f"{len(extraction.arms)} arms; best of {repeats}: {min(times):.2f} s (median {sorted(times)[len(times) // 2]:.2f} s); "
        f"first call {cold:.2f} s"
    )


if __name__ == "__main__":
    main()
