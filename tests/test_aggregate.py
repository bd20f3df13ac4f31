"""aggregate_comparisons: metafor aggregate.escalc parity on real data (compound symmetry,
a full V from vcalc or from reported covariances, unweighted), the columns kept, joined
and dropped, and the rows that cannot be combined."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import InputError
from evmeta.harmonize.aggregate import aggregate_comparisons
from evmeta.harmonize.assumed_covariance import sampling_covariance
from tests.conftest import DATA, ROOT

REFERENCE = json.loads((ROOT / "tests/reference/aggregate_vcalc.json").read_text())
#: The GLS mean is a closed form (a Cholesky solve per group of at most 20 rows): it equals
#: metafor's to rounding (~1e-13 seen), so 1e-8 relative leaves ample room for BLAS order.
CLOSED_FORM = 1e-8


def _check(result, reference: dict, key: str) -> None:
    table = result.table.assign(_key=lambda d: d[key].astype(str)).set_index("_key")
    ref = pd.DataFrame(reference).set_index("cluster")
    assert sorted(table.index) == sorted(ref.index)
    table = table.loc[ref.index]
    np.testing.assert_allclose(table["yi"], ref["yi"], rtol=CLOSED_FORM)
    np.testing.assert_allclose(table["vi"], ref["vi"], rtol=CLOSED_FORM)


def ishak() -> pd.DataFrame:
    return pd.read_csv(DATA / "correlated/ishak2007_long.csv")


def test_compound_symmetry_matches_aggregate_escalc():
    """dat.ishak2007, struct = "CS", rho = 0.6 (metafor's default structure)."""
    _check(
        aggregate_comparisons(ishak(), "study", rho=0.6), REFERENCE["ishak"]["aggregate_cs_rho06"], "study"
    )


def test_unweighted_matches_aggregate_escalc():
    result = aggregate_comparisons(ishak(), "study", rho=0.6, weighted=False)
    _check(result, REFERENCE["ishak"]["aggregate_cs_rho06_unweighted"], "study")


def test_time_points_through_V_match_struct_car():
    """V from sampling_covariance(time, phi = 0.9) equals aggregate(struct = "CAR", phi = 0.9)."""
    table = ishak()
    V = sampling_covariance(table, "study", time="time", phi=0.9)
    result = aggregate_comparisons(table, "study", V=V)
    _check(result, REFERENCE["ishak"]["aggregate_car_phi09"], "study")
    _check(result, REFERENCE["ishak"]["aggregate_V_phi09"], "study")
    assert result.dropped_columns == {"time": 23, "esid": 23}
    assert result.rho is None


def test_reported_covariances_match_aggregate_escalc():
    """dat.berkey1998: two outcomes per trial with their published covariance matrix."""
    table = pd.read_csv(DATA / "correlated/berkey1998.csv")
    result = aggregate_comparisons(table, "trial", V=np.array(REFERENCE["berkey"]["V"]))
    _check(result, REFERENCE["berkey"]["aggregate_V"], "trial")
    assert set(result.table["outcome"]) == {"PD + AL"}  # joined, not lost
    assert list(result.table["k_combined"]) == [2] * 5


def test_outcome_types_and_observations_match_aggregate_escalc():
    table = pd.read_csv(DATA / "correlated/assink2016.csv")
    _check(aggregate_comparisons(table, "study", rho=0.6), REFERENCE["assink"]["aggregate_cs_rho06"], "study")
    V = sampling_covariance(table, "study", obs="esid", outcome="deltype", rho=(0.7, 0.5))
    _check(aggregate_comparisons(table, "study", V=V), REFERENCE["assink"]["aggregate_V_type_obs"], "study")


def _cohorts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study_id": ["s1", "s1", "s1", "s2", "s3"],
            "experiment_id": ["e1", "e1", "e1", "e2", "e3"],
            "comparison_id": ["c1", "c2", "c3", "c4", "c5"],
            "outcome": ["infarct", "function", "infarct", "infarct", "infarct"],
            "measure": "SMD",
            "isolation_method": ["UC", "UC", "UC", "SEC", "UC"],
            "dose_ug_protein_per_kg": [50.0, 50.0, 50.0, 10.0, np.nan],
            "timepoint": [7.0, 7.0, 28.0, 7.0, 14.0],
            "n_treat": [8.0, 8.0, 6.0, 10.0, 5.0],
            "yi": [1.2, 0.8, 1.0, 0.4, 0.9],
            "vi": [0.25, 0.3, 0.35, 0.2, 0.4],
            "sei": np.sqrt([0.25, 0.3, 0.35, 0.2, 0.4]),
        }
    )


def test_columns_kept_joined_and_dropped():
    result = aggregate_comparisons(_cohorts(), ["study_id", "experiment_id"], rho=0.5)
    t = result.table
    assert list(t["experiment_id"]) == ["e1", "e2", "e3"]
    first = t.iloc[0]
    assert first["comparison_id"] == "c1 + c2 + c3" and first["outcome"] == "infarct + function"
    assert first["isolation_method"] == "UC" and first["dose_ug_protein_per_kg"] == 50.0  # constant: kept
    assert first["n_treat"] == 8.0  # the cohort's largest n
    assert (
        first["k_combined"] == 3 and first["varied_columns"] == "comparison_id, outcome, timepoint, n_treat"
    )
    assert "timepoint" not in t.columns and result.dropped_columns == {"timepoint": 1}
    assert np.isnan(t.iloc[2]["dose_ug_protein_per_kg"])  # a missing value is not a variation
    assert first["sei"] == pytest.approx(np.sqrt(first["vi"]))
    # Groups of one row pass through unchanged.
    assert t.iloc[1][["yi", "vi"]].tolist() == [0.4, 0.2]
    assert any("2 of 3 groups have one comparison" in n for n in result.notes)
    assert "timepoint (in 1 group)" in result.summary()


def test_compound_symmetry_by_hand():
    """Two rows, equal variances v, correlation r: mean of the two, variance v (1 + r) / 2."""
    t = pd.DataFrame({"g": ["a", "a"], "yi": [1.0, 0.0], "vi": [0.2, 0.2]})
    result = aggregate_comparisons(t, "g", rho=0.6)
    assert result.table["yi"].iloc[0] == pytest.approx(0.5, rel=1e-12)
    assert result.table["vi"].iloc[0] == pytest.approx(0.2 * 1.6 / 2, rel=1e-12)
    independent = aggregate_comparisons(t, "g", rho=0.0)
    assert independent.table["vi"].iloc[0] == pytest.approx(0.1, rel=1e-12)


def test_rows_that_cannot_be_combined_are_logged():
    t = _cohorts()
    t.loc[1, "yi"] = np.nan
    t.loc[3, "experiment_id"] = None
    t.loc[4, "measure"] = "ROM"
    t = pd.concat([t, t.iloc[[4]].assign(comparison_id="c6", measure="SMD")], ignore_index=True)
    result = aggregate_comparisons(t, ["study_id", "experiment_id"], rho=0.5)
    reasons = dict(zip(result.exclusions["comparison_id"], result.exclusions["reason"], strict=True))
    assert reasons["c2"] == "not combined: no effect size (yi)"
    assert reasons["c4"] == "not combined: no experiment_id to group by"
    assert reasons["c5"] == reasons["c6"] == "not combined: the group mixes effect measures (ROM, SMD)"
    assert list(result.table["comparison_id"]) == ["c1 + c3"]


def test_non_positive_definite_V_block_is_logged():
    t = pd.DataFrame({"g": ["a", "a", "b"], "yi": [1.0, 0.5, 0.2], "vi": [1.0, 1.0, 1.0]})
    V = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # rows 0, 1 perfectly correlated
    result = aggregate_comparisons(t, "g", V=V)
    assert list(result.table["g"]) == ["b"]
    assert set(result.exclusions["reason"]) == {
        "not combined: the group's sampling covariance matrix is not positive definite"
    }


def test_rho_one_is_a_sentence_not_a_traceback():
    with pytest.raises(InputError, match="rho = 1 makes the comparisons of a group perfectly correlated"):
        aggregate_comparisons(_cohorts(), "experiment_id", rho=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give rho"),
        ({"rho": 0.5, "V": np.eye(5)}, "not both"),
        ({"rho": -1.0}, r"correlation in \(-1, 1\)"),
        ({"V": np.eye(4)}, "must be 5 x 5"),
        ({"V": np.triu(np.ones((5, 5)))}, "symmetric"),
        ({"V": np.ones((5, 5)) * 0.1 + np.eye(5)}, "different groups"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        aggregate_comparisons(_cohorts(), "experiment_id", **kwargs)


def test_unknown_column_is_named():
    with pytest.raises(InputError, match="cohort"):
        aggregate_comparisons(_cohorts(), ["cohort"], rho=0.5)


def test_single_rows_only():
    t = _cohorts().iloc[[3, 4]]
    result = aggregate_comparisons(t, "experiment_id", rho=0.5)
    assert len(result) == 2 and result.notes[0] == "every group has one comparison: nothing was combined"
    np.testing.assert_array_equal(result.table["yi"], t["yi"])


def test_public_names():
    assert em.harmonize.aggregate_comparisons is aggregate_comparisons
    assert em.harmonize.AggregatedComparisons.__name__ == "AggregatedComparisons"
