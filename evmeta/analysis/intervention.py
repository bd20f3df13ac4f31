"""The MSC-EV-only parts of a spec, left out when the extraction has no EV preparation.

A review of another preclinical intervention (imported with ``import-wide`` and
``preparation_kind = "non_ev"``) has no isolation method, no MISEV items and no dose in EV
quantities. The spec defaults (subgroups and meta-regression by isolation method and quality
score, the dose-response on ug protein per kg) would then run on placeholders or fail;
:func:`without_ev_checks` returns the spec without them and one note per check left out,
and :func:`has_ev_preparations` tells the stages and the report which case they are in.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from evmeta.schema.preparation_kind import EV_ONLY_COLUMNS, NON_EV, ev_preparation_mask

#: Why an EV-only check is left out (the end of each note).
NO_EV = f"the extraction has no EV preparations (preparation_kind = {NON_EV})"
_TERM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def has_ev_preparations(table: pd.DataFrame) -> bool:
    """True when ``table`` (preparations, or comparisons with ``preparation_kind``) has at
    least one MSC-EV preparation (a blank kind, or no such column, is one); an empty table
    counts as an MSC-EV table (nothing to leave out)."""
    return bool(ev_preparation_mask(table).any()) if len(table) else True


def _ev_terms(formula: str | None) -> tuple[str | None, list[str]]:
    """``formula`` without its EV-only terms (a term naming one inside a call counts), and
    the terms removed."""
    if not formula:
        return formula, []
    terms = [t.strip() for t in formula.replace("~", "", 1).split("+") if t.strip()]
    ev = [t for t in terms if any(re.search(rf"\b{c}\b", t) for c in EV_ONLY_COLUMNS)]
    kept = [t for t in terms if t not in ev]
    return ("~ " + " + ".join(kept)) if kept else None, ev


def _named(terms: list[str]) -> str:
    return ", ".join(repr(t) for t in terms)


def without_ev_checks(spec: Any, preparations: pd.DataFrame) -> tuple[Any, list[str]]:
    """The spec without its MSC-EV-only analyses when ``preparations`` holds no EV
    preparation, and one note (a sentence) per analysis left out; otherwise ``spec`` as is.

    Left out: subgroups and forest grouping by EV-only columns, their terms in the
    meta-regression, Bayesian, location-scale and ``[bias] mods`` formulas, and the isolation-family and
    quality-score filters. The dose-response on EV doses and the isolation-method evidence
    are left out by their stages (:func:`has_ev_preparations`).
    """
    if has_ev_preparations(preparations):
        return spec, []
    notes: list[str] = []
    f, b, fig, filt = spec.frequentist, spec.bayesian, spec.figures, spec.filters
    subgroups = [by for by in f.subgroups if by not in EV_ONLY_COLUMNS]
    notes += [
        f"subgroups by {by}: not analysed, because {NO_EV}." for by in f.subgroups if by not in subgroups
    ]
    freq: dict[str, Any] = {"subgroups": subgroups}
    for key, model in (("meta_regression", "meta-regression"), ("scale", "location-scale model")):
        formula, removed = _ev_terms(getattr(f, key))
        if not removed:
            continue
        freq[key] = formula
        if formula is None:  # the report says why the model is missing
            notes.append(
                f"{model}: not fitted, because its moderator(s) {_named(removed)} describe EV preparations and {NO_EV}."
            )
        else:
            notes.append(f"{model}: moderator(s) {_named(removed)} left out, because {NO_EV}.")
    mods, removed = _ev_terms(b.mods)
    if removed and b.enabled:
        notes.append(f"Bayesian model: moderator(s) {_named(removed)} left out, because {NO_EV}.")
    bias_mods, removed = _ev_terms(spec.bias.mods)
    if removed:
        model = "bias model averaging with moderators"
        notes.append(
            f"{model}: not fitted, because its moderator(s) {_named(removed)} describe EV preparations and {NO_EV}."
            if bias_mods is None
            else f"{model}: moderator(s) {_named(removed)} left out, because {NO_EV}."
        )
    figures: dict[str, Any] = {}
    if fig.forest_by in EV_ONLY_COLUMNS:
        figures["forest_by"] = None
        notes.append(f"forest plot: not grouped by {fig.forest_by}, because {NO_EV}.")
    filters: dict[str, Any] = {}
    if filt.isolation_family:
        filters["isolation_family"] = []
        notes.append(f"filter isolation_family: not applied, because {NO_EV}.")
    if filt.min_quality_score > 0:
        filters["min_quality_score"] = 0.0
        notes.append(f"filter min_quality_score: not applied (no MISEV scoring), because {NO_EV}.")
    spec = spec.model_copy(
        update={
            "frequentist": f.model_copy(update=freq),
            "bayesian": b.model_copy(update={"mods": mods}),
            "bias": spec.bias.model_copy(update={"mods": bias_mods}),
            "figures": fig.model_copy(update=figures),
            "filters": filt.model_copy(update=filters),
        }
    )
    return spec, notes


__all__ = ["NO_EV", "has_ev_preparations", "without_ev_checks"]
