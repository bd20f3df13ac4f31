"""Every real printed dose of tests/data/printed_doses.csv is read as its row says, or
refused for the reason its row gives (provenance: tests/data/printed_doses.md)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evmeta.errors import DoseError
from evmeta.harmonize.doses import parse_dose
from evmeta.schema.doses.text import REASONS, DoseTextError

CORPUS = Path(__file__).parent / "data" / "printed_doses.csv"
with CORPUS.open(encoding="utf-8", newline="") as _handle:
    ROWS = list(csv.DictReader(_handle))
#: Relative tolerance on amounts: printed numbers times powers of ten, exact up to float rounding.
REL = 1e-9


def _optional(text: str) -> float | None:
    return float(text) if text.strip() else None


def _parse(row: dict[str, str]):
    """The row's dose as the arm it was printed for reads it: an EV arm (``mass_quantity``
    blank: a mass is EV protein) or the arm of a drug (``drug_mass``)."""
    return parse_dose(row["text"], mass_quantity=row["mass_quantity"] or "protein")


def test_corpus_is_large_cited_and_mixed():
    assert len(ROWS) >= 60
    assert all(row["source"].strip() for row in ROWS)
    assert all(row["text"].strip() for row in ROWS)
    assert len({row["text"] for row in ROWS}) == len(ROWS)
    read = [row for row in ROWS if not row["refusal"]]
    refused = [row for row in ROWS if row["refusal"]]
    assert len(read) >= 40 and len(refused) >= 15
    assert {row["refusal"] for row in refused} <= set(REASONS)


@pytest.mark.parametrize("row", [r for r in ROWS if not r["refusal"]], ids=lambda r: r["text"][:50])
def test_printed_dose_is_read(row):
    dose = _parse(row)
    assert dose.value == pytest.approx(float(row["value"]), rel=REL)
    assert (dose.quantity, dose.basis) == (row["quantity"], row["basis"])
    expected_n = _optional(row["n_doses"])
    assert dose.n_doses == (int(expected_n) if expected_n is not None else None)
    expected_interval = _optional(row["interval_days"])
    if expected_interval is None:
        assert dose.interval_days is None
    else:
        assert dose.interval_days == pytest.approx(expected_interval, rel=REL)
    assert dose.vehicle_volume_ul == _optional(row["vehicle_volume_ul"])


@pytest.mark.parametrize("row", [r for r in ROWS if r["refusal"]], ids=lambda r: r["text"][:50])
def test_printed_dose_is_refused_for_its_reason(row):
    with pytest.raises(DoseError, match="cannot read dose") as info:
        _parse(row)
    assert isinstance(info.value, DoseTextError)
    assert info.value.reason == row["refusal"], str(info.value)


def test_second_round_kinds_are_in_the_corpus():
    """Issue 25: real printed per-organ, agent, diet and bound doses are corpus rows."""
    read = [r for r in ROWS if not r["refusal"]]
    assert {"per_organ", "in_diet"} <= {r["basis"] for r in read}
    assert {"drug_mass", "dietary_concentration"} <= {r["quantity"] for r in read}
    assert "bound" in {r["refusal"] for r in ROWS}


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r["quantity"] == "drug_mass" and not r["mass_quantity"]], ids=lambda r: r["text"][:50]
)
def test_an_agents_printed_dose_names_the_agent_and_is_no_ev_dose(row):
    dose = parse_dose(row["text"])
    assert dose.agent is not None and not dose.is_ev_dose
    assert any("not of the EVs" in note for note in dose.notes)


@pytest.mark.parametrize("row", [r for r in ROWS if r["basis"] == "per_organ"], ids=lambda r: r["text"][:50])
def test_a_printed_per_organ_dose_names_the_organ(row):
    assert parse_dose(row["text"]).organ


def test_drug_doses_of_other_interventions_are_in_the_corpus():
    """Issue 25 item 3: doses printed for drugs (mg/kg, microg, nmol, pmol, a diet) are corpus
    rows, and none is read as EV protein."""
    drug = [r for r in ROWS if r["mass_quantity"] == "drug_mass"]
    assert len(drug) >= 10 and {r["mass_quantity"] for r in ROWS} == {"", "drug_mass"}
    assert any("microg" in r["text"] for r in drug)
    quantities = {r["quantity"] for r in ROWS if not r["refusal"]}
    assert {"substance_amount", "dietary_concentration", "drug_mass"} <= quantities
    for row in [r for r in drug if not r["refusal"]]:
        dose = _parse(row)
        assert not dose.is_ev_dose and dose.agent is None, row["text"]


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r["mass_quantity"] == "drug_mass" and not r["refusal"]], ids=lambda r: r["text"][:50]
)
def test_a_drug_dose_printed_for_an_ev_arm_would_be_ev_protein(row):
    """The context is what decides: the same mass on an EV arm is EV protein (ug), which is
    why a non-EV preparation's arms read masses as drug doses."""
    as_drug, as_ev = _parse(row), parse_dose(row["text"])
    assert (as_drug.quantity, as_ev.quantity) == ("drug_mass", "protein")
    assert as_ev.value == pytest.approx(as_drug.value * 1000.0, rel=REL)  # mg -> ug
