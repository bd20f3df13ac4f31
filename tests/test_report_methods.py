"""The Methods paragraph lists only what was fitted, with the test each model used, read
from the fitted results (issue 22 items 3 and 9)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

import evmeta as em
from evmeta.analysis.spec import parse_spec
from evmeta.analysis.stages import _multilevel
from evmeta.report.interpret import bias_disagreement, small_study_summary
from evmeta.report.methods import inference_words, methods_paragraph
from evmeta.results import AnalysisModels
from evmeta.run_tables import RunTables


def _table(k: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {
            "yi": rng.normal(1.0, 0.4, k),
            "vi": rng.uniform(0.1, 0.3, k),
            "study_id": [f"S{i // 2}" for i in range(k)],
            "experiment_id": [f"E{i}" for i in range(k)],
            "measure": "SMD",
        }
    )


def _run(table, **frequentist):
    spec = parse_spec({"analysis": {"name": "x", "extraction": "e"}, "frequentist": frequentist})
    main = em.meta_analysis(table, test=spec.frequentist.test, level=spec.frequentist.level)
    return SimpleNamespace(
        spec=spec,
        models=AnalysisModels(random_effects=main),
        tables=RunTables(analysis_table=table),
        notes=[],
        provenance={},
    )


def test_multilevel_models_use_the_specs_test_and_level():
    """The spec says Knapp-Hartung: the multilevel model is fitted with t (k - p df), not z."""
    run = _run(_table(), test="knha", level=90, robust=False)
    _multilevel(run, _table(), None)
    fit = run.models.multilevel
    assert fit.test == "t" and fit.level == 0.9
    assert "t tests with k − p degrees of freedom" in methods_paragraph(run)
    run = _run(_table(), test="z", robust=False)
    _multilevel(run, _table(), None)
    assert run.models.multilevel.test == "z"


def test_methods_name_only_fitted_analyses():
    run = _run(_table(), test="knha")
    text = methods_paragraph(run)
    assert "random-effects model" in text and "Knapp-Hartung" in text
    for absent in ("Subgroups", "meta-regression", "multilevel", "Egger", "Bayesian"):
        assert absent not in text, absent
    run.models = run.models.adding("egger", "sei", em.models.egger_test(run.models.random_effects, "sei"))
    text = methods_paragraph(run)
    assert "Egger regression on the standard error" in text and "trim-and-fill" not in text
    assert "fewer than 10" in text  # k = 8


def test_test_words_come_from_the_fit():
    table = _table()
    assert inference_words(em.meta_analysis(table, test="z")) == "Wald z tests"
    robust = em.multilevel_meta_analysis(table, random=["study_id", "experiment_id"], robust=True)
    assert inference_words(robust).startswith("cluster-robust (CR2)") and "HTZ" not in inference_words(robust)


def test_small_study_caveat_only_below_ten():
    for k, caveat in ((8, True), (12, False)):
        run = _run(_table(k))
        run.models = run.models.adding("egger", "sei", em.models.egger_test(run.models.random_effects, "sei"))
        assert ("Sterne et al. 2011" in small_study_summary(run)) is caveat


def test_bias_disagreement_sentence_only_when_far():
    run = _run(_table())
    main = run.models.random_effects
    run.models = run.models.with_(pet_peese=SimpleNamespace(estimate=main.estimate))  # agrees
    assert bias_disagreement(run) == ""
    run.models = run.models.with_(
        pet_peese=SimpleNamespace(estimate=-main.estimate)
    )  # other sign, outside the CI
    assert "differ strongly from the unadjusted" in bias_disagreement(run)
