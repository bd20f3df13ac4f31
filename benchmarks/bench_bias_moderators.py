"""Benchmark: the bias ensemble with one 5-level moderator (``bias_model_averaging(mods=)``) at
k = 100.

Run ``.venv/bin/python benchmarks/bench_bias_moderators.py``. Times the 32-model ensemble
(16 bias models x the moderator in or out; every marginal likelihood by closed form or
converged quadrature) next to the 16-model ensemble without it. Goal: under 10 s on 2 cores
(issue 27 item 2; RoBMA.reg with JAGS needs minutes to hours).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import evmeta as em  # noqa: E402
from benchmarks.bench_bias import simulate  # noqa: E402

METHODS = ("UC", "SEC", "TFF", "kit", "UF")


def simulate_moderated(k: int, seed: int = 1) -> pd.DataFrame:
    """The bench_bias SMDs with a 5-level isolation method shifting the mean by up to 0.4."""
    yi, vi = simulate(k)
    rng = np.random.default_rng(seed)
    level = rng.integers(0, len(METHODS), k)
    shift = np.array([0.0, 0.2, -0.2, 0.4, 0.0])[level]
    return pd.DataFrame({"yi": yi + shift, "vi": vi, "isolation_method": np.array(METHODS)[level]})


def main(k: int = 100, reps: int = 3) -> None:
    frame = simulate_moderated(k)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        em.models.bias_model_averaging(frame, mods="~ isolation_method")
        times.append(time.perf_counter() - start)
    plain = []
    for _ in range(reps):
        start = time.perf_counter()
        em.models.bias_model_averaging(frame)
        plain.append(time.perf_counter() - start)
    print(f"k = {k}, median of {reps} runs")
    print(
        f"| ensemble with a 5-level moderator (32 models) | {statistics.median(times):.2f} s | goal < 10 s |"
    )
    print(f"| ensemble without it (16 models) | {statistics.median(plain):.2f} s | |")


if __name__ == "__main__":
    main()
