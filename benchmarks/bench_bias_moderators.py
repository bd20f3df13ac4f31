"""Benchmark: the bias ensemble with moderators (``bias_model_averaging(mods=)``).

Run ``.venv/bin/python benchmarks/bench_bias_moderators.py``. Times, at k = 100, the 32-model
ensemble with one 5-level moderator (16 bias models x the moderator in or out; every marginal
likelihood by closed form or converged quadrature) next to the 16-model ensemble without it
(goal: under 10 s on 2 cores, issue 27 item 2; RoBMA.reg with JAGS needs minutes to hours);
then the 64-model ensemble with the 5-level moderator and a numeric one
(``~ isolation_method + quality_score``) at k = 100 and on the example workbook's 113
comparisons (goal: seconds, not minutes). Prints ``uptime`` before and after (the machine is
shared).
"""

from __future__ import annotations

import os
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


def simulate_moderated_numeric(k: int, seed: int = 7) -> pd.DataFrame:
    """:func:`simulate_moderated` with a quality score in [0, 1] shifting the mean by 0.3 per unit."""
    frame = simulate_moderated(k)
    score = np.random.default_rng(seed).uniform(0, 1, k)
    return frame.assign(quality_score=score, yi=frame["yi"] + 0.3 * (score - 0.5))


def example_table() -> pd.DataFrame:
    """The example workbook's SMDs on the three outcomes of docs/bias_moderators.md."""
    book = em.read_extraction(ROOT / "extraction" / "example.xlsx")
    outcome = ["serum creatinine", "infarct volume", "infarct size"]
    return em.build_comparisons(book, "SMD", outcome=outcome).table


def _median_time(frame: pd.DataFrame, mods: str | None, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        em.models.bias_model_averaging(frame, mods=mods)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numeric(reps: int = 3) -> None:
    """The ensemble with a categorical and a numeric moderator (64 models)."""
    mods = "~ isolation_method + quality_score"
    for label, frame in (
        ("k = 100, 5 levels", simulate_moderated_numeric(100)),
        ("example, k = 113", example_table()),
    ):
        print(f"| {label}: `{mods}` (64 models) | {_median_time(frame, mods, reps):.2f} s | seconds |")


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
    print(os.popen("uptime").read().strip())
    main()
    numeric()
    print(os.popen("uptime").read().strip())
