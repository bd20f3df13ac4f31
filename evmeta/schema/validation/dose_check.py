"""Every ``arms.dose_text`` read at validation, so that what the dose harmonizer would not use
is reported at its cell.

- A text the dose grammar (:func:`evmeta.schema.doses.text.read_dose_text`) cannot read is
  a **note** with the reason (``range``, ``no_unit``, ...): the arm is still analysed, with
  ``dose_value``/``dose_unit`` when they are typed, else without a dose (it drops out of
  dose moderators and dose-response).
- A dose given per animal of another species than the experiment's (``100 ug/mouse`` in a
  rat experiment) is an **error**: one of the two cells is wrong, and the harmonizer would
  refuse the dose.
- A readable dose the harmonizer will not use as an EV dose is a **note** at the cell: the
  dose of a named agent on an ``ev`` arm ('cisplatin (5 mg/kg)': it looks like the injury
  model's), a drug dose on an ``ev`` arm ('10 nmol', '600 mg/kg chow'), a per-organ dose
  ('200 ug per kidney': no dose per animal), an approximate amount ('~100 ug'). An arm given
  a non-EV preparation (``preparation_kind = non_ev``) reads a mass as a drug's mass
  ('5 mg/kg' of rapamycin) and needs no such note.
- One dose printed in two quantities ('100 ug, approximately 3.75 x 10^11 particles') gives
  the preparation's particle-to-protein ratio: it fills an empty
  ``preparations.particles_per_ug_protein`` (a note at that cell), and a preparation that
  states another ratio (by more than 10%) gets a note naming both
  (:mod:`evmeta.schema.doses.ratio`).
"""

from __future__ import annotations

from typing import Any

from evmeta.errors import DoseError
from evmeta.schema.doses.ratio import implied_particles_per_ug, ratios_differ
from evmeta.schema.doses.text import read_dose_text
from evmeta.schema.doses.value import Dose
from evmeta.schema.preparation_kind import is_ev_kind
from evmeta.schema.validation.collector import _Collector

#: The ``check`` name of the notes and errors made here.
CHECK = "dose_text"


def _unreadable(arm: dict[str, Any], exc: DoseError) -> str:
    reason = getattr(exc, "reason", None)
    detail = getattr(exc, "detail", None) or str(exc)
    if reason == "not_reported":
        what = "the text says the dose is not reported"
    else:
        what = f"cannot be read: {detail}" + (f" [{reason}]" if reason else "")
    if arm.get("dose_value") is not None and arm.get("dose_unit"):
        return f"{what}; dose_value and dose_unit are used instead"
    if arm.get("role") != "ev":
        return what
    return (
        f"{what}; the arm is analysed without a dose (left out of dose moderators and dose-response): "
        "type dose_value, dose_unit and dose_basis to give it one"
    )


def check_dose_texts(
    tables: dict[str, list[dict[str, Any]]], out: _Collector, letters: dict[str, dict[str, str]]
) -> None:
    """Read every ``dose_text``: a note for an unreadable one, an error (arm left out) for a
    dose per animal of another species than the experiment's."""
    experiments = {e["experiment_id"]: e for e in tables.get("experiments", [])}
    letter = letters.get("arms", {}).get("dose_text")
    implied: dict[str, list[tuple[dict[str, Any], float]]] = {}
    non_ev = {p.get("prep_id") for p in tables.get("preparations", []) if not is_ev_kind(p.get("preparation_kind"))}
    keep = []
    for arm in tables.get("arms", []):
        text = arm.get("dose_text")
        if not isinstance(text, str) or not text.strip():
            keep.append(arm)
            continue
        treated_with_ev = arm.get("role") == "ev" and arm.get("prep_id") not in non_ev
        try:
            reading = read_dose_text(text, mass_quantity="protein" if treated_with_ev else "drug_mass")
        except DoseError as exc:
            out.add("arms", arm["_row"], "dose_text", text, _unreadable(arm, exc), "note", letter, CHECK)
            keep.append(arm)
            continue
        experiment = experiments.get(arm["experiment_id"])
        species = experiment.get("species") if experiment else None
        if reading.species and species and species not in reading.species:
            message = (
                f"the dose is given per {' or '.join(reading.species)} but experiment "
                f"{arm['experiment_id']!r} is in {species}: correct the experiment's species or the dose text"
            )
            out.add("arms", arm["_row"], "dose_text", text, message, letter=letter, check=CHECK)
            continue
        for message in _remarks(arm, reading, treated_with_ev):
            out.add("arms", arm["_row"], "dose_text", text, message, "note", letter, CHECK)
        if (ratio := implied_particles_per_ug(reading)) is not None and arm.get("prep_id"):
            implied.setdefault(arm["prep_id"], []).append((arm, ratio))
        keep.append(arm)
    if "arms" in tables:
        tables["arms"] = keep
    _ratios_to_preparations(tables, implied, out, letters)


def _remarks(arm: dict[str, Any], reading: Dose, treated_with_ev: bool) -> list[str]:
    """Notes on a readable dose that the harmonizer uses only in part, or not as an EV dose
    (an arm of a non-EV preparation has no EV dose to miss: its drug dose needs no note)."""
    typed = arm.get("dose_value") is not None and arm.get("dose_unit")
    instead = "; dose_value and dose_unit are used instead" if typed else ""
    remarks = []
    if treated_with_ev and reading.agent is not None:
        remarks.append(
            f"names {reading.agent}: it looks like the dose of the injury-model (or another) agent, not of the "
            f"EVs, and is not used as the EV dose{instead or '; type the EV dose'}"
        )
    elif treated_with_ev and not reading.is_ev_dose:
        remarks.append(
            f"a drug dose ({reading.quantity.replace('_', ' ')}, {reading.value:g} {reading.unit}), not an "
            f"amount of EVs: not used as the EV dose{instead}"
        )
    if reading.basis == "per_organ":
        remarks.append(
            f"the dose is given per {reading.organ}: no dose per animal or per kg is computed (how many were "
            "treated is not in the text); type dose_value with dose_basis per_animal if the paper says"
        )
    if reading.qualifier is not None:
        remarks.append(f"the amount is printed as approximate ({reading.value:g} {reading.unit} read)")
    return remarks


def _ratios_to_preparations(tables, implied, out: _Collector, letters) -> None:
    """Fill or check ``preparations.particles_per_ug_protein`` from doses printed in two quantities."""
    column = "particles_per_ug_protein"
    letter = letters.get("preparations", {}).get(column)
    for prep in tables.get("preparations", []):
        found = implied.get(prep.get("prep_id"), [])
        if not found:
            continue
        arms = ", ".join(f"{a['arm_id']} ({r:.3g})" for a, r in found)
        stated = prep.get(column)
        ratios = [r for _, r in found]
        if stated is None:
            if any(ratios_differ(r, ratios[0]) for r in ratios):
                message = f"the dose texts of arms {arms} imply different particles per ug protein: not filled"
                out.add("preparations", prep["_row"], column, None, message, "note", letter, CHECK)
                continue
            prep[column] = sorted(ratios)[len(ratios) // 2]
            message = f"filled from the dose text of arm(s) {arms}, printed in protein and particles: {prep[column]:.3g}"
            out.add("preparations", prep["_row"], column, None, message, "note", letter, CHECK)
        elif any(ratios_differ(r, float(stated)) for r in ratios):
            message = (
                f"the preparation states {float(stated):.3g} particles per ug protein, but the dose text of arm(s) "
                f"{arms} implies another; the printed amounts are used for those doses"
            )
            out.add("preparations", prep["_row"], column, stated, message, "note", letter, CHECK)


__all__ = ["CHECK", "check_dose_texts"]
