"""Benchmark: the Bayesian engine, each case in a fresh process (imports and compilation
included in "whole process"; "fit" is the call to bayesian_meta_analysis alone).

Run ``.venv/bin/python benchmarks/bench_bayes.py``; the table is printed and written into
benchmarks/README.md between the BAYES markers. Cases: one-level quadrature at k = 13
(BCG) and k = 1,000; the three-level meta-regression (5-level isolation factor + quality
score, k = 300 comparisons in 100 studies) by quadrature, by nutpie, and by PyMC's default
NUTS sampler on the same PyMC model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _three_level(k: int = 300, studies: int = 100, seed: int = 3):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    study = np.sort(rng.integers(0, studies, size=k))
    experiment = rng.integers(0, 2, size=k)
    methods = np.array(["UC", "SEC", "TFF+SEC", "precipitation", "UF"])
    method = methods[rng.integers(0, 5, size=studies)][study]
    quality = rng.uniform(0, 1, size=studies)[study]
    effect = {"UC": 0.0, "SEC": 0.5, "TFF+SEC": 0.7, "precipitation": -0.5, "UF": 0.1}
    vi = rng.uniform(0.1, 0.5, size=k)
    u = rng.normal(0, 0.5, size=studies)[study]
    w = rng.normal(0, 0.3, size=(studies, 2))[study, experiment]
    mean = 1.5 + np.array([effect[m] for m in method]) + 1.0 * quality
    return pd.DataFrame(
        {
            "yi": mean + u + w + rng.normal(0, np.sqrt(vi)),
            "vi": vi,
            "isolation_method": method,
            "quality_score": quality,
            "study_id": study,
            "experiment_id": experiment,
        }
    )


def textbook_child() -> None:
    """The three-level model as a PyMC user writes it: explicit non-centred study and
    experiment effects, the same priors as evmeta's defaults, PyMC's default sampler."""
    start_import = time.perf_counter()
    import numpy as np
    import pymc as pm

    import evmeta as em  # noqa: F401  (the same imports as the other cases, for the priors)
    from evmeta.models.base.design import prepare
    from evmeta.models.base.nesting import nested_structure
    from evmeta.models.priors import measure_scale, resolve_priors

    imports = time.perf_counter() - start_import
    start = time.perf_counter()
    data = _three_level()
    model = prepare(data, "yi", "vi", "~ isolation_method + quality_score")
    structure = nested_structure(data, ["study_id", "experiment_id"])
    priors = resolve_priors(
        None,
        names=model.names,
        terms=model.term_columns,
        levels=structure.levels,
        scale=measure_scale(model.measure, model.yi),
    )
    sigma = np.array([p.params[1] for p in priors.coefficients.values()])
    tau_sigma = [p.params[0] for p in priors.taus.values()]
    with pm.Model():
        beta = pm.Normal("beta", mu=0.0, sigma=sigma, shape=len(sigma))
        tau_study = pm.HalfNormal("tau_study", sigma=tau_sigma[0])
        tau_experiment = pm.HalfNormal("tau_experiment", sigma=tau_sigma[1])
        z_study = pm.Normal("z_study", 0.0, 1.0, shape=structure.sizes[0])
        z_experiment = pm.Normal("z_experiment", 0.0, 1.0, shape=structure.sizes[1])
        mu = (
            pm.math.dot(model.X, beta)
            + tau_study * z_study[structure.codes[0]]
            + tau_experiment * z_experiment[structure.codes[1]]
        )
        pm.Normal("y", mu=mu, sigma=np.sqrt(model.vi), observed=model.yi)
        trace = pm.sample(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
    elapsed = time.perf_counter() - start
    import arviz as az

    names = ["beta", "tau_study", "tau_experiment"]
    ess = float(min(np.min(az.ess(trace, var_names=[n])[n].values) for n in names))
    rhat = float(max(np.max(az.rhat(trace, var_names=[n])[n].values) for n in names))
    divergences = int(trace.sample_stats["diverging"].values.sum())
    print(json.dumps({"imports": imports, "fit": elapsed, "method": "nuts", "ess": ess,
                      "divergences": divergences, "rhat": rhat, "sampler": f"pymc {pm.__version__}"}))  # fmt: skip


def child(case: str) -> None:
    if case == "textbook_three":
        textbook_child()
        return
    start_import = time.perf_counter()
    import numpy as np
    import pandas as pd
    import scipy.sparse  # noqa: F401

    import evmeta as em
    import evmeta.models.bayes.fit

    if not case.startswith("one_level"):
        import formulaic  # noqa: F401
    imports = time.perf_counter() - start_import

    if case.startswith("one_level"):
        k = int(case.split("_")[-1])
        if k == 13:
            reference = json.loads((ROOT / "tests" / "reference" / "metafor_reference.json").read_text())
            data = pd.DataFrame(reference["bcg"])
        else:
            rng = np.random.default_rng(1)
            vi = rng.uniform(0.05, 0.5, size=k)
            data = pd.DataFrame({"yi": rng.normal(1.0, np.sqrt(vi + 0.25)), "vi": vi})
        kwargs = {}
    else:
        data = _three_level()
        kwargs = dict(mods="~ isolation_method + quality_score", random=["study_id", "experiment_id"])
    method = {"quadrature": "quadrature", "nutpie": "nuts", "nutpiepymc": "nuts", "pymc": "nuts"}[
        case.split("_")[0] if not case.startswith("one") else "quadrature"
    ]
    start = time.perf_counter()
    if case.startswith(("pymc", "nutpiepymc")):
        import functools

        from evmeta.models.bayes import fit as bayes
        from evmeta.models.bayes import pymc_backend as bayes_pymc

        sampler = "pymc" if case.startswith("pymc") else "nutpie-pymc"
        original = bayes_pymc.sample_nuts
        bayes_pymc.sample_nuts = functools.partial(original, sampler=sampler)  # evmeta's PyMC model
        try:
            fit = bayes.bayesian_meta_analysis(
                data, method="nuts", seed=1, progress=False, draws=1000, tune=1000, **kwargs
            )
        finally:
            bayes_pymc.sample_nuts = original
    else:
        fit = em.bayesian_meta_analysis(
            data, method=method, seed=1, progress=False, draws=1000, tune=1000, **kwargs
        )
    elapsed = time.perf_counter() - start
    summary = str(fit.summary())  # part of the whole process: an analyst always looks at it
    assert "intercept" in summary
    exact = {
        "min_ess_bulk": float("nan"),
        "divergences": 0,
        "max_r_hat": float("nan"),
        "sampler": "quadrature",
    }
    d = exact if fit.method_used == "quadrature" else fit.diagnostics
    print(
        json.dumps(
            {
                "imports": imports,
                "fit": elapsed,
                "method": fit.method_used,
                "ess": d["min_ess_bulk"],
                "divergences": d["divergences"],
                "rhat": d["max_r_hat"],
                "sampler": d["sampler"],
            }
        )
    )


GOAL_CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.bench_bayes import _three_level
import evmeta as em
fit = em.bayesian_meta_analysis(_three_level(), mods="~ isolation_method + quality_score",
                                random=["study_id", "experiment_id"], seed=1, draws=1000, chains=4)
import pandas as pd
text = str(fit.summary()); fit.coef_table()
fit.predict(newmods=pd.DataFrame({{"isolation_method": ["SEC"], "quality_score": [0.5]}}))
heavy = [m for m in ("arviz", "pymc", "pytensor", "matplotlib", "scipy.stats", "formulaic") if m in sys.modules]
print(json.dumps({{"heavy": heavy, "method": fit.method_used}}))
"""


def whole_process_goal(repeats: int = 3) -> str:
    """The goal of issue 13: a three-level k = 300 meta-regression by quadrature, fitted and
    summarized in a fresh process in at most 2 s, importing neither ArviZ, PyMC nor
    matplotlib. Side by side, the same interpreter importing only numpy and pandas shows the
    machine's speed at that moment (best of ``repeats`` each, wall and CPU time)."""
    import resource

    def best(args: list[str]) -> tuple[float, float, str]:
        walls, cpus, out = [], [], ""
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            out = done.stdout
        return min(walls), min(cpus), out

    goal_wall, goal_cpu, out = best([sys.executable, "-c", GOAL_CHILD.format(root=str(ROOT))])
    base_wall, base_cpu, _ = best([sys.executable, "-c", "import numpy, pandas"])
    result = json.loads(out.strip().splitlines()[-1])
    lines = [
        "| process | wall (best of 3) | CPU (best of 3) | heavy modules imported |",
        "| --- | --- | --- | --- |",
        f"| three-level k = 300 quadrature fit + summary + one prediction | {goal_wall:.2f} s | {goal_cpu:.2f} s | "
        f"{', '.join(result['heavy']) or 'none'} |",
        f"| baseline: python -c 'import numpy, pandas' | {base_wall:.2f} s | {base_cpu:.2f} s | - |",
    ]
    return "\n".join(lines)


def main() -> None:
    goal = whole_process_goal()
    print(goal, flush=True)
    readme = ROOT / "benchmarks" / "README.md"
    text = readme.read_text()
    start_marker, end_marker = "<!-- BAYES GOAL START -->", "<!-- BAYES GOAL END -->"
    if start_marker in text:
        text = (
            text[: text.index(start_marker) + len(start_marker)]
            + "\n"
            + goal
            + "\n"
            + text[text.index(end_marker) :]
        )
        readme.write_text(text)
    if "--goal" in sys.argv:
        return
    cases = [
        ("one-level quadrature", "one_level_13", 13),
        ("one-level quadrature", "one_level_1000", 1000),
        ("three-level meta-regression, quadrature", "quadrature_three", 300),
        ("three-level meta-regression, nutpie on evmeta's marginal log posterior (the NUTS path)", "nutpie_three", 300),
        ("three-level meta-regression, nutpie on evmeta's PyMC model", "nutpiepymc_three", 300),
        ("three-level meta-regression, PyMC default NUTS on evmeta's PyMC model", "pymc_three", 300),
        ("three-level meta-regression, textbook PyMC model (explicit non-centred effects)", "textbook_three", 300),
    ]
    wholes: dict[str, float] = {}
    lines = [
        "| case | k | imports | fit | whole process | min bulk ESS | divergences | max R-hat |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, case, k in cases:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, case], capture_output=True, text=True, cwd=ROOT)
        whole = time.perf_counter() - start
        wholes[case] = whole
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        exact = result["method"] == "quadrature"
        ess = "exact" if exact else f"{result['ess']:.0f}"
        rhat = "-" if exact else f"{result['rhat']:.3f}"
        lines.append(
            f"| {label} | {k:,} | {result['imports']:.1f} s | {result['fit'] * 1000:.0f} ms | {whole:.1f} s | {ess} | "
            f"{result['divergences']} | {rhat} |"
        )
        print(lines[-1], flush=True)
    if "nutpie_three" in wholes and "textbook_three" in wholes:
        lines += [
            "",
            f"NUTS path against the textbook PyMC model, whole process in this run: "
            f"{wholes['textbook_three'] / wholes['nutpie_three']:.1f}x faster (goal: at least 3x).",
        ]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines += ["", f"`uptime` after the run: {uptime}."]
    table = "\n".join(lines)
    readme = ROOT / "benchmarks" / "README.md"
    text = readme.read_text()
    start_marker, end_marker = "<!-- BAYES START -->", "<!-- BAYES END -->"
    if start_marker in text:
        text = (
            text[: text.index(start_marker) + len(start_marker)]
            + "\n"
            + table
            + "\n"
            + text[text.index(end_marker) :]
        )
        readme.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] != "--goal":
        sys.path.insert(0, str(ROOT))
        child(sys.argv[1])
    else:
        main()
