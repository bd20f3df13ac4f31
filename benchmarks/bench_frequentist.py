"""Benchmark: evmeta's frequentist engine against metafor, same data, side by side.

Run ``.venv/bin/python benchmarks/bench_frequentist.py`` (needs Rscript with metafor for
the comparison; without it, evmeta alone is timed). metafor's times are measured inside R
(``proc.time`` around the fit), so R's start-up is excluded. The table is printed and
written into benchmarks/README.md between the FREQUENTIST markers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import evmeta as em  # noqa: E402

R_CODE = r"""
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); kind <- args[2]; reps <- as.integer(args[3])
times <- numeric(reps)
for (i in seq_len(reps)) {
  t0 <- proc.time()[["elapsed"]]
  if (kind == "reml") {
    fit <- rma(yi, vi, mods = ~ x1 + x2 + g, data = d, method = "REML")
    est <- c(fit$beta[1], fit$tau2)
  } else {
    fit <- rma.mv(yi, vi, mods = ~ x1 + g, random = ~ 1 | study/experiment, data = d, sparse = TRUE)
    est <- c(fit$beta[1], fit$sigma2)
  }
  times[i] <- proc.time()[["elapsed"]] - t0
}
cat(jsonlite::toJSON(list(seconds = min(times), estimates = est), digits = NA, auto_unbox = TRUE))
"""


def simulate(k: int, seed: int, studies: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    studies = studies or k
    study = np.sort(rng.integers(0, studies, size=k))
    experiment = rng.integers(0, 3, size=k)
    x1 = rng.normal(size=k)
    x2 = rng.uniform(0, 1, size=k)
    g = rng.choice(["UC", "SEC", "TFF+SEC", "precipitation", "UF"], size=k)
    vi = rng.uniform(0.05, 0.6, size=k)
    u = rng.normal(0, 0.5, size=studies)[study]
    w = rng.normal(0, 0.3, size=(studies, 3))[study, experiment]
    yi = 1.0 + 0.3 * x1 - 0.5 * x2 + (g == "SEC") * 0.4 + u + w + rng.normal(0, np.sqrt(vi))
    return pd.DataFrame(
        {
            "yi": yi,
            "vi": vi,
            "x1": x1,
            "x2": x2,
            "g": g,
            "study": study,
            "experiment": [f"{s}-{e}" for s, e in zip(study, experiment, strict=True)],
        }
    )


def time_evmeta(fit, repeats: int) -> float:
    fit()  # warm up imports and caches
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        best = min(best, time.perf_counter() - start)
    return best


def time_metafor(frame: pd.DataFrame, kind: str, repeats: int) -> float | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data.csv"
        script = Path(folder) / "bench.R"
        frame.to_csv(data, index=False)
        script.write_text(R_CODE)
        out = subprocess.run(
            ["Rscript", str(script), str(data), kind, str(repeats)], capture_output=True, text=True
        )
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return None
        return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def batched_per_fit(frame: pd.DataFrame, n: int = 1000) -> float:
    """Seconds per fit of the REML meta-regression of ``n`` data sets sharing the design of
    ``frame`` (new effect sizes drawn around the fitted model), in one batched call; the
    first data set is checked against ``meta_analysis`` (1e-10 on tau^2)."""
    from evmeta.models.frequentist.batched import batched_meta_analysis

    single = em.meta_analysis(frame, mods="~ x1 + x2 + g")
    X, vi = single.model.X, single.vi
    rng = np.random.default_rng(3)
    Y = X @ single.coefficients["estimate"].to_numpy() + rng.normal(
        0, np.sqrt(vi + single.tau2), (n, len(vi))
    )
    Y[0] = single.yi
    batched_meta_analysis(Y[:10], vi, X)  # warm up
    start = time.perf_counter()
    fit = batched_meta_analysis(Y, vi, X, method="REML")
    seconds = (time.perf_counter() - start) / n
    assert abs(fit.tau2[0] - single.tau2) <= 1e-10 * max(1.0, single.tau2), (fit.tau2[0], single.tau2)
    return seconds


def main() -> None:
    rows = []
    before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    for k, repeats in [(100, 20), (1000, 3)]:
        frame = simulate(k, seed=k)
        ours = time_evmeta(lambda f=frame: em.meta_analysis(f, mods="~ x1 + x2 + g"), repeats * 2)
        theirs = time_metafor(frame, "reml", repeats)
        rows.append(("REML meta-regression", k, ours, theirs))
        if k == 100:
            name = "REML meta-regression, batched: 1,000 data sets sharing the design, per fit"
            rows.append((name, k, batched_per_fit(frame), theirs))
    frame = simulate(100_000, seed=1)
    rows.append(
        (
            "REML meta-regression",
            100_000,
            time_evmeta(lambda: em.meta_analysis(frame, mods="~ x1 + x2 + g"), 3),
            None,
        )
    )
    frame = simulate(1000, seed=7, studies=100)
    ours = time_evmeta(
        lambda: em.multilevel_meta_analysis(frame, random=["study", "experiment"], mods="~ x1 + g"), 3
    )
    rows.append(("three-level meta-regression (100 studies)", 1000, ours, time_metafor(frame, "mv", 3)))
    lines = ["| model | k | evmeta | metafor | evmeta / metafor |", "| --- | --- | --- | --- | --- |"]
    for name, k, ours, theirs in rows:
        ratio = f"{ours / theirs:.3f}" if theirs else "(metafor not run)"
        other = f"{theirs * 1000:.1f} ms" if theirs else "-"
        lines.append(f"| {name} | {k:,} | {ours * 1000:.1f} ms | {other} | {ratio} |")
    after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines += [
        "",
        f"`uptime` before: {before}; after: {after} (the machine is shared with other jobs; both",
        "engines ran in this one run, so the ratios share the load).",
    ]
    table = "\n".join(lines)
    print(table)
    readme = ROOT / "benchmarks" / "README.md"
    text = readme.read_text()
    start, end = "<!-- FREQUENTIST START -->", "<!-- FREQUENTIST END -->"
    if start in text:
        text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end) :]
        readme.write_text(text)


if __name__ == "__main__":
    main()
