"""Effect sizes against metafor's escalc (golden JSON) and hand-worked NMD examples."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evmeta.harmonize.dispersion import mean_sd_from_quartiles, mean_sd_from_range, sd_from_ci, sd_from_sem
from evmeta.harmonize.effects import effect_size, hedges_correction
from tests.conftest import DATA, ROOT

GOLDEN = json.loads((ROOT / "tests" / "reference" / "escalc_reference.json").read_text())
# Closed-form arithmetic on identical inputs: agreement to 1e-10 (relative) is exact up to
# floating-point rounding; any formula difference would show at 1e-3 or worse.
EXACT = 1e-10


@pytest.mark.parametrize("measure", ["MD", "SMD", "ROM"])
def test_continuous_matches_escalc(measure):
    d = GOLDEN["continuous"]
    got = effect_size(
        measure, m1i=d["m1i"], sd1i=d["sd1i"], n1i=d["n1i"], m2i=d["m2i"], sd2i=d["sd2i"], n2i=d["n2i"]
    )
    np.testing.assert_allclose(got["yi"], d[measure]["yi"], rtol=EXACT, atol=1e-14)
    np.testing.assert_allclose(got["vi"], d[measure]["vi"], rtol=EXACT)
    np.testing.assert_allclose(got["sei"] ** 2, got["vi"], rtol=EXACT)


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_binary_matches_escalc_including_zero_cells(measure):
    d = GOLDEN["binary"]
    got = effect_size(measure, ai=d["ai"], bi=d["bi"], ci=d["ci"], di=d["di"])
    np.testing.assert_allclose(got["yi"], d[measure]["yi"], rtol=EXACT, atol=1e-14)
    np.testing.assert_allclose(got["vi"], d[measure]["vi"], rtol=EXACT)


def test_binary_with_totals_instead_of_non_events():
    d = GOLDEN["binary"]
    n1 = np.add(d["ai"], d["bi"])
    n2 = np.add(d["ci"], d["di"])
    got = effect_size("OR", ai=d["ai"], n1i=n1, ci=d["ci"], n2i=n2)
    np.testing.assert_allclose(got["yi"], d["OR"]["yi"], rtol=EXACT)


def _read_cart():
    frame = pd.read_csv(DATA / "cart" / "cart_tumor_volume.csv", na_values=["NA", ""])
    return frame


def test_real_preclinical_data_matches_escalc():
    frame = _read_cart()
    got = effect_size(
        "SMD", data=frame, m1i="mean.ex", sd1i="sd.ex", n1i="no.ex", m2i="mean.nc", sd2i="sd.nc", n2i="no.nc"
    )
    valid = got[got["reason"] == ""]
    golden = GOLDEN["cart_tumor_volume"]
    assert list(valid["Study.ID"]) == golden["study"]
    np.testing.assert_allclose(valid["yi"], golden["yi"], rtol=EXACT)
    np.testing.assert_allclose(valid["vi"], golden["vi"], rtol=EXACT)
    # The row with a missing SD is NaN with its reason, not dropped and not a crash.
    assert (got["reason"] == "SD missing").sum() == frame[["sd.ex", "sd.nc"]].isna().any(axis=1).sum() >= 1
    assert len(got) == len(frame)


def test_nmd_hand_worked():
    # Control 40 (SD 8), EV 25 (SD 6), sham 10, n = 8 each: the EVs recover half the injury.
    got = effect_size("NMD", m1i=[25.0], sd1i=[6.0], n1i=[8], m2i=[40.0], sd2i=[8.0], n2i=[8], msi=[10.0])
    assert got["yi"][0] == pytest.approx(50.0, rel=1e-12)
    assert got["vi"][0] == pytest.approx((100 / 30) ** 2 * (36 / 8 + 64 / 8), rel=1e-12)  # 138.888...
    # Higher-is-better outcome (ejection fraction): control 38, EV 45, sham 70 -> +21.875%.
    got = effect_size("NMD", m1i=[45.0], sd1i=[5.0], n1i=[6], m2i=[38.0], sd2i=[5.0], n2i=[6], msi=[70.0])
    assert got["yi"][0] == pytest.approx(100 * 7 / 32, rel=1e-12)


def test_invalid_inputs_give_nan_with_reason():
    got = effect_size(
        "ROM",
        m1i=[5, -1, 5, 5],
        sd1i=[1, 1, 0, 1],
        n1i=[5, 5, 5, 0],
        m2i=[4, 4, 4, 4],
        sd2i=[1, 1, 1, 1],
        n2i=[5, 5, 5, 5],
    )
    assert list(got["reason"]) == [
        "",
        "ROM needs positive means",
        "SD must be > 0",
        "n must be > 0 in each arm",
    ]
    assert got["yi"].isna().tolist() == [False, True, True, True]
    nmd = effect_size("NMD", m1i=[5], sd1i=[1], n1i=[5], m2i=[4], sd2i=[1], n2i=[5], msi=[4])
    assert nmd["reason"][0] == "sham mean equals control mean"


def test_unknown_measure_and_missing_arguments():
    with pytest.raises(ValueError, match="valid measures"):
        effect_size("HEDGES", m1i=[1])
    with pytest.raises(ValueError, match="needs msi"):
        effect_size("NMD", m1i=[1], sd1i=[1], n1i=[5], m2i=[1], sd2i=[1], n2i=[5])


def test_hedges_correction_exact_and_approximation():
    # J(10) from the gamma functions; the classic approximation 1 - 3/(4m - 1) agrees to 1e-3.
    assert hedges_correction(np.array([10.0]))[0] == pytest.approx(
        math.gamma(5) / (math.sqrt(5) * math.gamma(4.5)), rel=1e-12
    )
    m = np.arange(6, 200, dtype=float)
    assert np.max(np.abs(hedges_correction(m) - (1 - 3 / (4 * m - 1)))) < 1e-3


@given(st.floats(0.01, 100), st.floats(-50, 50), st.integers(2, 60))
def test_smd_sign_and_symmetry(sd, diff, n):
    a = effect_size("SMD", m1i=[diff], sd1i=[sd], n1i=[n], m2i=[0.0], sd2i=[sd], n2i=[n])
    b = effect_size("SMD", m1i=[0.0], sd1i=[sd], n1i=[n], m2i=[diff], sd2i=[sd], n2i=[n])
    assert a["yi"][0] == pytest.approx(-b["yi"][0], abs=1e-12)
    assert a["vi"][0] == pytest.approx(b["vi"][0], rel=1e-12)


def test_dispersion_conversions():
    assert sd_from_sem([2.0], [16])[0] == pytest.approx(8.0)
    # Cochrane 6.5.2.2: n = 25, 95% CI 3.0 to 7.0 -> SD = 5 x 4 / (2 t_{0.975,24}).
    assert sd_from_ci([3.0], [7.0], [25])[0] == pytest.approx(5 * 4 / (2 * 2.0638985616280205), rel=1e-9)
    assert sd_from_ci([3.0], [7.0], [100], dist="z")[0] == pytest.approx(
        10 * 4 / (2 * 1.959963984540054), rel=1e-9
    )
    # Wan et al. (2014) C3 with n = 20: SD = IQR / (2 Phi^-1((15 - 0.125)/20.25)).
    mean, sd = mean_sd_from_quartiles([10.0], [12.0], [17.0], [20])
    assert mean[0] == pytest.approx(13.0)
    assert sd[0] == pytest.approx(7 / (2 * NormalDist().inv_cdf(14.875 / 20.25)), rel=1e-9)
    mean, sd = mean_sd_from_range([2.0], [10.0], [22.0], [30])
    assert mean[0] == pytest.approx(11.0)
    assert sd[0] > 0
    assert np.isnan(sd_from_sem([-1.0], [5])[0])
    luo_mean, _ = mean_sd_from_quartiles([10.0], [12.0], [17.0], [20], method="luo")
    assert luo_mean[0] == pytest.approx((0.7 + 0.39 / 20) * 13.5 + (0.3 - 0.39 / 20) * 12.0)


def test_data_frame_interface_keeps_columns():
    frame = pd.DataFrame(
        {"a": [5.0], "b": [1.0], "c": [10], "d": [3.0], "e": [1.0], "f": [10], "keep": ["x"]}
    )
    out = effect_size("MD", data=frame, m1i="a", sd1i="b", n1i="c", m2i="d", sd2i="e", n2i="f")
    assert list(out.columns) == ["a", "b", "c", "d", "e", "f", "keep", "yi", "vi", "sei", "reason"]
    assert out.attrs["measure"] == "MD"
    with pytest.raises(KeyError, match="not a column"):
        effect_size("MD", data=frame, m1i="zz", sd1i="b", n1i="c", m2i="d", sd2i="e", n2i="f")


@pytest.mark.parametrize("measure", ["MD", "SMD", "ROM"])
def test_fractional_n_matches_escalc(measure):
    """Split controls (n = 5/3), a treatment arm of 1 and n1 + n2 - 2 <= 1: effect_size computes
    exactly what escalc computes (NA included); tolerance 1e-10 (same closed forms)."""
    ref = GOLDEN["fractional_n"]
    got = effect_size(measure, **{k: ref[k] for k in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")})
    expected_yi = np.array([np.nan if v == "NA" else v for v in ref[measure]["yi"]], dtype=float)
    expected_vi = np.array([np.nan if v == "NA" else v for v in ref[measure]["vi"]], dtype=float)
    np.testing.assert_allclose(got["yi"], expected_yi, rtol=1e-10)
    np.testing.assert_allclose(got["vi"], expected_vi, rtol=1e-10)
    assert (got["reason"] != "").tolist() == np.isnan(expected_yi).tolist()


def test_overflowing_numbers_are_not_an_effect_size():
    """Means near the float limit give inf differences: a reason, never yi = -inf."""
    got = effect_size("MD", m1i=[1.5e308], sd1i=[1.0], n1i=[5], m2i=[-1.5e308], sd2i=[1.0], n2i=[5])
    assert np.isnan(got["yi"][0]) and "not finite" in got["reason"][0]
