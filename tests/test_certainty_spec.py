"""The [certainty] section of a spec: defaults, overrides with their mandatory reason, and
errors that name the key and list the valid choices."""

from __future__ import annotations

import typing

import pytest

from evmeta.analysis.certainty_spec import Domain, Judgement
from evmeta.analysis.spec import parse_spec
from evmeta.errors import SpecError
from evmeta.report.certainty import DOMAINS, JUDGEMENTS

BASE = {"analysis": {"name": "x", "extraction": "book.xlsx"}}


def _spec(certainty):
    return parse_spec({**BASE, "certainty": certainty})


def test_the_spec_vocabulary_is_the_rules_vocabulary():
    assert typing.get_args(Domain) == DOMAINS
    assert typing.get_args(Judgement) == JUDGEMENTS


def test_defaults_and_an_override():
    spec = parse_spec(BASE)
    assert spec.certainty.enabled and spec.certainty.important_effect is None
    assert (spec.certainty.alpha, spec.certainty.power, spec.certainty.override) == (0.05, 0.8, [])
    spec = _spec(
        {
            "important_effect": 0.8,
            "override": [
                {
                    "outcome": "infarct size",
                    "domain": "indirectness",
                    "judgement": "very serious",
                    "reason": " why ",
                }
            ],
        }
    )
    (entry,) = spec.certainty.override
    assert (entry.outcome, entry.domain, entry.judgement, entry.reason) == (
        "infarct size", "indirectness", "very serious", "why",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"outcome": "a", "domain": "indirectness", "judgement": "serious"}, "missing required key 'certainty.override.0.reason'"),
        ({"outcome": "a", "domain": "indirectness", "judgement": "serious", "reason": "  "}, "needs its reason"),
        ({"outcome": "a", "domain": "bias", "judgement": "serious", "reason": "r"}, "'bias' is not allowed; valid choices: 'risk_of_bias'"),
        ({"outcome": "a", "domain": "imprecision", "judgement": "low", "reason": "r"}, "valid choices: 'not serious', 'serious' or 'very serious'"),
        ({"outcome": "a", "domain": "imprecision", "judgement": "serious", "reason": "r", "note": 1}, "unknown key 'certainty.override.0.note'"),
    ],
)  # fmt: skip
def test_bad_overrides_are_refused_naming_the_key(override, message):
    with pytest.raises(SpecError, match=r"certainty\.override") as info:
        _spec({"override": [override]})
    assert message in str(info.value)


def test_other_bad_values():
    with pytest.raises(SpecError, match=r"unknown key 'certainty\.importance'"):
        _spec({"importance": 0.5})
    with pytest.raises(SpecError, match=r"certainty\.important_effect"):
        _spec({"important_effect": -0.5})
    with pytest.raises(SpecError, match=r"certainty\.power"):
        _spec({"power": 0.3})
    twice = {"outcome": "a", "domain": "imprecision", "judgement": "serious", "reason": "r"}
    with pytest.raises(SpecError, match="two overrides of imprecision for outcome 'a'"):
        _spec({"override": [twice, twice]})


def test_animals_are_counted_once_per_arm():
    """A control shared by two EV arms (n 8, split 4 + 4) and an EV arm measured at two time
    points: 8 + 6 + 7 = 21 animals, not the comparisons' sum (6 + 4) + (7 + 4) + (7 + 4) = 32."""
    import pandas as pd

    from evmeta.analysis.certainty import _animals

    sub = pd.DataFrame(
        {
            "arm_id": ["EV1", "EV2", "EV2"],
            "control_arm_id": ["C", "C", "C"],
            "n_treat": [6, 7, 7],
            "n_control": [4, 4, 4],
            "n_control_reported": [8, 8, 8],
        }
    )
    assert _animals(sub) == 6 + 7 + 8
    assert _animals(sub.drop(columns=["arm_id"])) == 6 + 7 + 7 + 12
