"""Regressions from the adversarial sweep of ``evmeta run`` on small reviews (k = 2..10).

Each test plants one thing a newcomer's review may hold, builds the workbook with
tests/small_reviews.py and checks that the run gives a sound answer or a sentence saying why not.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from evmeta.cli import app
from evmeta.errors import ModelError
from evmeta.models.base.design import prepare
from evmeta.models.frequentist.meta import _knapp_hartung_scale
from tests.small_reviews import five_studies, write_review

SPEC = """
[analysis]
name = "sweep"
extraction = "{extraction}"

[comparisons]
outcomes = ["infarct volume", "serum creatinine"]

[frequentist]
test = "knha"
subgroups = []
meta_regression = "~ isolation_method"

[bayesian]
enabled = false

[figures]
formats = ["svg"]
"""


def _identical(studies: tuple[str, ...]) -> dict[str, list[dict]]:
    """Only ``studies``, every one with the same arms (38 vs 24, SD 7, n 8): tau = 0 exactly."""
    sheets = five_studies()
    for sheet, rows in sheets.items():
        sheets[sheet] = [
            r for r in rows if r.get("study_id", str(r.get("experiment_id", "")).split("-")[0]) in studies
        ]
    for row in sheets["outcomes"]:
        row.update(n=8, sd=7.0, mean=38.0 if "-C" in row["arm_id"] else 24.0)
    return sheets


@pytest.mark.parametrize(
    "studies", [("LI2019", "CHEN2020", "ROSSI2018"), ("LI2019", "CHEN2020", "ROSSI2018", "KIM2022")]
)
def test_identical_effect_sizes_give_the_z_test_with_a_note(tmp_path, studies):
    """Knapp-Hartung's scale is 0 (or roundoff, ~1e-31) when all effect sizes are equal: the run
    used to stop (k = 3) or report SE ~1e-16 and p ~1e-81 (k = 4, roundoff). Now the pooled
    model takes the z test (the SE of metafor's ad hoc Knapp-Hartung, max(1, s^2), with normal quantiles), with a note."""
    extraction = write_review(tmp_path / "extraction", _identical(studies))
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(extraction=extraction.as_posix()), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(spec), "-o", str(out), "--quiet"], terminal_width=200)
    assert result.exit_code == 0, result.output
    results = pd.read_csv(out / "results.csv")
    assert not (results["se"] <= 1e-8).any(), results
    main = results[results["model"] == "random_effects"].iloc[0]
    vi = pd.read_csv(out / "comparisons.csv")["vi"].to_numpy()
    # tau^2 = 0: the equal-effects SE, sqrt(1 / sum(1 / vi)) (metafor test = "adhoc").
    assert main["test"] == "z" and main["se"] == pytest.approx(math.sqrt(1 / np.sum(1 / vi)), rel=1e-10)
    assert "Knapp-Hartung not possible" in " ".join(result.output.split())
    # The meta-regression has no residual variation either: a note, not SE ~1e-15.
    assert not (results["model"] == "meta_regression").any()


def test_knapp_hartung_scale_treats_roundoff_as_zero():
    with pytest.raises(ModelError, match="residual variation"):
        _knapp_hartung_scale(8e-31, 6, 1, total=60.0)
    assert _knapp_hartung_scale(0.5, 6, 1, total=60.0) == pytest.approx(0.1)


def test_a_constant_moderator_is_named_without_numpy_repr():
    """The note read "has a single value (np.float64(0.601411765263412))"."""
    frame = pd.DataFrame({"yi": [0.1, 0.2, 0.3], "vi": [0.1] * 3, "sei": [0.601411765263412] * 3})
    with pytest.raises(ModelError) as info:
        prepare(frame, "yi", "vi", "~ sei")
    assert "single value (0.6014)" in str(info.value) and "np." not in str(info.value)


def test_equal_taus_are_not_ranked():
    """Both species at tau = 0 (the boundary) used to read "most consistent with rat and least
    with mouse"."""
    from types import SimpleNamespace

    from evmeta.analysis.consistency import consistency_answer

    nan = float("nan")
    row = dict(tau2_ci_low=nan, tau2_ci_high=nan, pred=nan, pi_low=nan, pi_high=nan, k=3)
    levels = pd.DataFrame([{**row, "label": "rat", "tau": 1e-5}, {**row, "label": "mouse", "tau": 0.0}])
    fit = SimpleNamespace(scale="~ species", level=0.95, notes=[])
    text = consistency_answer(fit, None, levels)
    assert "most consistent" not in text and "the same (to two decimals)" in text
    levels.loc[0, "tau"] = 0.4
    assert "most consistent with mouse and least with rat" in consistency_answer(fit, None, levels)


def test_multilevel_variance_explained_by_the_moderators_is_not_estimated():
    """One study per isolation method: the study indicators lie in the moderators' column space,
    the REML likelihood is flat in sigma^2[study] (metafor 3.8.1 profile on the sweep's review: ll = -0.9955 at every
    sigma^2 from 0 to 0.1) and the start value (0.5) used to be reported as tau^2 with I^2 = 32%."""
    from evmeta.models.frequentist.multilevel import multilevel_meta_analysis

    frame = pd.DataFrame(
        {
            "yi": [4.07, 3.30, 5.10, 5.25, 3.0, 4.4],
            "vi": [1.02, 0.68, 0.9, 0.95, 0.5, 0.8],
            "study_id": ["A", "B", "C", "C", "D", "E"],
            "isolation_method": ["SEC", "UC+DG", "UC", "UC", "TFF", "PEG"],
        }
    )
    with pytest.raises(ModelError, match="moderators already separate every study_id group"):
        multilevel_meta_analysis(frame, mods="~ isolation_method", random=["study_id"])
    # Without the moderator the study variance is estimable and is estimated.
    fit = multilevel_meta_analysis(frame, random=["study_id"])
    assert np.isfinite(fit.tau2)
