"""Benchmark: the publication-bias model ensemble (``bias_model_averaging``) at k = 100.

Run ``.venv/bin/python benchmarks/bench_bias.py``. Times the 16-model ensemble (every marginal
likelihood by exact integration) side by side with two baselines on the same data: one REML
random-effects fit (``meta_analysis``) and one ML step-function selection model
(``selection_model``), and prints the ratios. Goal: the whole ensemble in at most 5 s for k = 100
(RoBMA with JAGS needs minutes for the same ensemble of models).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import evmeta as em  # noqa: E402


def simulate(k: int, seed: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """SMDs of small animal studies (n 5-12 per arm), true mean 1.0, tau 0.5, mild selection."""
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 13, size=4 * k)
    vi = 2 / n + 1.0 / (4 * n)
    yi = rng.normal(1.0, np.sqrt(vi + 0.25))
    significant = yi / np.sqrt(vi) > 1.96
    keep = significant | (rng.uniform(size=yi.size) < 0.5)
    return yi[keep][:k], vi[keep][:k]


def timed(func, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(k: int = 100, reps: int = 3) -> None:
    yi, vi = simulate(k)
    fit = em.meta_analysis(yi=yi, vi=vi)
    ensemble = timed(lambda: em.models.bias_model_averaging(yi=yi, vi=vi), reps)
    reml = timed(lambda: em.meta_analysis(yi=yi, vi=vi), reps)
    selection = timed(lambda: em.models.selection_model(fit), reps)
    print(f"k = {k}, median of {reps} runs")
    print(f"| ensemble (16 models) | {ensemble:.2f} s | goal <= 5 s |")
    print(f"| REML meta_analysis | {1000 * reml:.1f} ms | ensemble / REML = {ensemble / reml:.0f} |")
    print(
        f"| ML selection_model | {1000 * selection:.1f} ms | ensemble / selection = {ensemble / selection:.0f} |"
    )


if __name__ == "__main__":
    main()
