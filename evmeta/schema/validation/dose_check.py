"""Every ``arms.dose_text`` read at validation, so that what the dose harmonizer would not use
is reported at its cell.

- A text the dose grammar (:func:`evmeta.schema.doses.text.read_dose_text`) cannot read is
  a **note** with the reason (``range``, ``no_unit``, ...): the arm is still analysed, with
  ``dose_value``/``dose_unit`` when they are typed, else without a dose (it drops out of
  dose moderators and dose-response).
- A dose given per animal of another species than the experiment's (``100 ug/mouse`` in a
  rat experiment) is an **error**: one of the two cells is wrong, and the harmonizer would
  refuse the dose.
"""

from __future__ import annotations

from typing import Any

from evmeta.errors import DoseError
from evmeta.schema.doses.text import read_dose_text
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


def check_dose_texts(tables: dict[str, list[dict[str, Any]]], out: _Collector, letters) -> None:
    """Read every ``dose_text``: a note for an unreadable one, an error (arm left out) for a
    dose per animal of another species than the experiment's."""
    experiments = {e["experiment_id"]: e for e in tables.get("experiments", [])}
    letter = letters.get("arms", {}).get("dose_text")
    keep = []
    for arm in tables.get("arms", []):
        text = arm.get("dose_text")
        if not isinstance(text, str) or not text.strip():
            keep.append(arm)
            continue
        try:
            reading = read_dose_text(text)
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
        keep.append(arm)
    if "arms" in tables:
        tables["arms"] = keep


__all__ = ["CHECK", "check_dose_texts"]
