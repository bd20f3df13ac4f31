"""The spec reads what a metafor user types (issue 22 item 9) and refuses an outcome that
matches no row (item 6), before anything is fitted."""

from __future__ import annotations

import pandas as pd
import pytest

from evmeta.analysis.spec import parse_spec
from evmeta.analysis.stages import model_test
from evmeta.analysis.table import check_outcomes
from evmeta.errors import SpecError


def _spec(**frequentist):
    return parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, "frequentist": frequentist})


def test_metafor_spellings_are_read():
    spec = _spec(test="t", method="FE", level=95, multilevel="~ 1 | study_id/experiment_id")
    f = spec.frequentist
    assert (f.test, f.method, f.level, f.multilevel) == ("knha", "EE", 0.95, ["study_id", "experiment_id"])
    assert _spec(level=0.9).frequentist.level == 0.9 and _spec(level=90).frequentist.level == 0.9
    bayes = parse_spec(
        {"analysis": {"name": "x", "extraction": "e"}, "bayesian": {"random": "~ 1 | study_id/experiment_id"}}
    )
    assert bayes.bayesian.random == ["study_id", "experiment_id"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"level": 100}, "frequentist.level"),
        ({"level": 0}, "frequentist.level"),
        ({"multilevel": "~ x | study_id"}, "only random intercepts"),
        ({"multilevel": "~ 1 | study_id//experiment_id"}, "empty"),
        ({"test": "wald"}, "frequentist.test"),
    ],
)
def test_bad_values_name_the_key(settings, message):
    with pytest.raises(SpecError, match=message):
        _spec(**settings)


def test_every_model_gets_the_specs_test():
    """Knapp-Hartung for the univariate models; its multilevel analogue, t with k - p df."""
    assert model_test(_spec(test="knha")) == "knha" and model_test(_spec(test="knha"), multilevel=True) == "t"
    assert model_test(_spec(test="z")) == "z" and model_test(_spec(test="z"), multilevel=True) == "z"


def test_an_outcome_no_row_names_is_an_error_with_the_closest():
    rows = pd.DataFrame({"outcome": ["infarct size", "Serum creatinine ", "infarct volume"]})
    check_outcomes(["INFARCT SIZE", "serum creatinine"], rows)  # case and spaces ignored
    with pytest.raises(SpecError, match=r"'infarct siz' \(did you mean 'infarct size'\?\)") as info:
        check_outcomes(["infarct siz", "serum creatinine"], rows)
    assert "[comparisons] outcomes" in str(info.value) and "Serum creatinine" in str(info.value)
    with pytest.raises(SpecError, match="'grip strength' matches no outcome row"):
        check_outcomes(["grip strength"], rows)
