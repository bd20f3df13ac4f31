"""predict(threshold=c): the probability that a new comparable study's true effect exceeds
c (``p_true_above``), per subgroup and per scale level (``threshold_table``).

Checks: (1) consistency with the prediction interval the same fit reports: at c = pi_low
the probability is (1 + level) / 2 and at c = pi_high it is (1 - level) / 2, for normal
(z) and t (Knapp-Hartung) fits, multilevel and location-scale fits (exact up to floating
point, 1e-10); (2) numerical integration of the predictive density; (3) calibration by
simulation: over data sets from a known random-effects model, the average p_true_above
matches how often a new study's true effect lies above c.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import evmeta as em
from evmeta.models.base.threshold import threshold_table
from tests.conftest import ROOT

LS = pd.DataFrame(json.loads((ROOT / "tests" / "reference" / "location_scale.json").read_text())["data"])
K11 = pd.DataFrame(
    json.loads((ROOT / "tests" / "reference" / "multilevel_heterogeneity.json").read_text())["data"]
)


def _fits():
    return {
        "z": em.meta_analysis(LS),
        "knha": em.meta_analysis(LS, test="knha"),
        "metareg": em.meta_analysis(LS, mods="~ meta", test="knha"),
        "multilevel": em.multilevel_meta_analysis(K11, random=["district", "school"]),
        "location_scale": em.meta_analysis(LS, scale="~ meta"),
    }


@pytest.mark.parametrize("name", ["z", "knha", "metareg", "multilevel", "location_scale"])
def test_probability_at_the_prediction_limits_is_the_tail_level(name):
    fit = _fits()[name]
    pred = fit.predict(level=0.9)
    for column, expected in [("pi_low", 0.95), ("pi_high", 0.05)]:
        for i in range(min(len(pred), 3)):
            c = float(pred[column].iloc[i])
            newmods = fit.data.iloc[[i]] if len(pred) > 1 else None
            row = fit.predict(newmods, level=0.9, threshold=c).iloc[0]
            assert row["p_true_above"] == pytest.approx(expected, abs=1e-10)


def test_probability_is_the_integral_of_the_predictive_density():
    fit = em.meta_analysis(LS, test="knha")
    row = fit.predict(threshold=0.3).iloc[0]
    scale = np.sqrt(row["se"] ** 2 + fit.tau2)
    density = lambda x: stats.t.pdf((x - row["pred"]) / scale, fit.df) / scale  # noqa: E731
    area, _ = integrate.quad(density, 0.3, np.inf)
    assert row["p_true_above"] == pytest.approx(area, abs=1e-8)
    share = stats.norm.sf(0.3, row["pred"], np.sqrt(fit.tau2))
    assert row["share_true_above"] == pytest.approx(share, rel=1e-12)


def test_probability_is_calibrated_over_repeated_meta_analyses():
    rng = np.random.default_rng(5)
    mu, tau, k, c = 0.4, 0.3, 20, 0.7  # c = mu + tau: a new true effect exceeds it w.p. 0.159
    predicted = []
    for _ in range(100):
        vi = rng.uniform(0.02, 0.1, k)
        yi = mu + rng.normal(0, tau, k) + rng.normal(0, np.sqrt(vi))
        fit = em.meta_analysis(yi=yi, vi=vi, test="knha")
        predicted.append(fit.predict(threshold=c)["p_true_above"].iloc[0])
    # The exact frequency is Phi(-1) = 0.1587. The predicted probability varies across data
    # sets with SD 0.09, so its mean over 100 has SE 0.009; the t-based predictive
    # distribution is slightly wide (mean 0.178 with this seed), so 0.03 leaves ~1 SE of
    # room, while a formula that ignored tau (probability ~0) or used tau without the
    # centring on pred would miss by far more.
    assert np.mean(predicted) == pytest.approx(stats.norm.sf(1.0), abs=0.03)


def test_threshold_table_per_subgroup_and_per_scale_level():
    sub = em.subgroup_analysis(LS, by="meta")
    table = threshold_table(sub, [0, 0.5])
    assert list(table["group"]) == ["no", "no", "yes", "yes"]
    direct = sub.fits["yes"].predict(threshold=0.5)["p_true_above"].iloc[0]
    assert table.query("group == 'yes' and threshold == 0.5")["p_true_above"].iloc[0] == pytest.approx(direct)
    scale = em.meta_analysis(LS, scale="~ meta")
    per_level = threshold_table(scale, 0.0).set_index("group")
    wide = scale.predict(pd.DataFrame({"meta": ["no", "yes"]}), threshold=0.0)
    np.testing.assert_allclose(per_level.loc[["no", "yes"], "p_true_above"], wide["p_true_above"], rtol=1e-12)
    # A larger tau pulls the probability of exceeding 0 towards one half.
    assert per_level.loc["yes", "p_true_above"] < per_level.loc["no", "p_true_above"]


def test_threshold_errors_and_removed_prob():
    fit = em.meta_analysis(LS)
    with pytest.raises(em.ModelError, match="one value"):
        fit.predict(threshold=[0, 0.5])
    with pytest.raises(em.ModelError, match="must be a number"):
        fit.predict(threshold="big")
    with pytest.raises(TypeError, match="prob"):  # the interval level is level=, one word everywhere
        fit.predict(prob=0.9)
    with pytest.raises(TypeError, match="prbo"):
        fit.predict(prbo=0.9)
    assert "p_true_above" not in fit.predict().columns
