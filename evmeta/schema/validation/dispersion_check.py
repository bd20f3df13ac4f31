"""SD or SEM? Notes on outcome rows whose ``sd`` may hold a standard error.

An SEM typed into the ``sd`` column makes an arm look about sqrt(n) times more precise and
inflates a standardized mean difference by up to that factor. Three signs are looked for; each gives a **note** (never an error: the value may be
right), with ``check`` set to the sign's name:

``sd_sem_ratio``
    ``sd`` and ``sem`` are both given and ``sd / sem`` is more than :data:`RATIO_TOLERANCE`
    (25%) away from sqrt(n). Rounding both to two significant digits moves the ratio by at
    most about 10%, and an ``n`` of analysed versus allocated animals (8 vs 10) by about
    12%; 25% leaves room for both and still catches ``sd == sem`` for every n >= 2
    (sqrt(2) = 1.41).
``sd_notes_say_sem``
    ``sd`` is filled, ``sem`` is empty, and the row's ``notes`` say SE/SEM ("mean ± SE",
    "SEM", "s.e.m.", "standard error").
``cv_outlier``
    The arm's coefficient of variation (sd / mean, rows with mean > 0) is a low outlier
    among the rows of the same outcome and unit across the review: a robust z-score of log
    CV, ``z = 0.6745 (x - median) / MAD`` (Iglewicz & Hoaglin 1993), below
    ``-CV_Z_THRESHOLD`` (-3.5), in groups of at least :data:`CV_MIN_ROWS` rows from
    :data:`CV_MIN_STUDIES` studies. An SEM in place of an SD at n = 8 moves log CV by
    log(sqrt(8)) = 1.04. Only small CVs are flagged: a large CV arises naturally where a
    mean lies near the floor of its scale (a score near 0 after treatment).

References
----------
Iglewicz B, Hoaglin DC (1993). How to Detect and Handle Outliers. ASQC Quality Press.
Vesterinen HM et al. (2014). Meta-analysis of data from animal studies: a practical guide.
J Neurosci Methods 221:92-102 (SEM reported as SD in preclinical papers).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

import numpy as np

from evmeta.schema.validation.collector import _Collector

#: Largest relative distance of sd/sem from sqrt(n) accepted without a note.
RATIO_TOLERANCE = 0.25
#: Robust z-score of log CV beyond which an arm's CV is an outlier.
CV_Z_THRESHOLD = 3.5
#: Rows and studies an outcome/unit group needs before CV outliers are looked for.
CV_MIN_ROWS = 6
CV_MIN_STUDIES = 3

_SAYS_SEM = re.compile(
    r"(?<![a-z])(s\.?e\.?m\.?|s\.?e\.?|std\.? ?err(?:or)?|standard errors?)(?![a-z])", re.IGNORECASE
)


def _ratio_note(row: dict[str, Any]) -> str | None:
    sd, sem, n = row.get("sd"), row.get("sem"), row.get("n")
    if sd is None or sem is None or not n:
        return None
    ratio, expected = sd / sem, math.sqrt(n)
    if abs(ratio / expected - 1.0) <= RATIO_TOLERANCE:
        return None
    return (
        f"sd / sem = {ratio:.2f}, but with n = {n} it should be about sqrt(n) = {expected:.2f}: one of "
        "them may be the other statistic (harmonize uses sd); if sd holds the SEM, clear sd"
    )


def _notes_note(row: dict[str, Any]) -> str | None:
    notes = row.get("notes")
    if row.get("sd") is None or row.get("sem") is not None or not isinstance(notes, str):
        return None
    found = _SAYS_SEM.search(notes)
    if not found:
        return None
    return (
        f"sd is filled but the notes say {found.group(0)!r}: if the paper reports mean ± SE(M), "
        "move the value to the sem column (harmonize converts it with sqrt(n))"
    )


def _cv_notes(outcomes: list[dict[str, Any]], studies: dict[str, str]) -> dict[int, str]:
    """Excel row -> note, for arms whose CV is an outlier in their outcome/unit group."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in outcomes:
        if row.get("sd") is not None and row.get("mean") is not None and row["mean"] > 0:
            unit = (row.get("unit") or "").casefold().strip()
            groups[(row["outcome"].casefold().strip(), unit)].append(row)
    found: dict[int, str] = {}
    for (outcome, unit), rows in groups.items():
        if len(rows) < CV_MIN_ROWS or len({studies.get(r["experiment_id"]) for r in rows}) < CV_MIN_STUDIES:
            continue
        log_cv = np.log([r["sd"] / r["mean"] for r in rows])
        median = float(np.median(log_cv))
        mad = float(np.median(np.abs(log_cv - median)))
        if mad <= 0:
            continue
        z = 0.6745 * (log_cv - median) / mad
        typical = math.exp(median)
        for row, score in zip(rows, z, strict=True):
            if score >= -CV_Z_THRESHOLD:
                continue
            found[row["_row"]] = (
                f"coefficient of variation sd/mean = {row['sd'] / row['mean']:.3g} is unusually small, "
                "so sd may be an SEM "
                f"(robust z = {score:.1f}; median {typical:.3g} over {len(rows)} rows of {outcome!r}"
                f"{f' in {unit}' if unit else ''})"
            )
    return found


def check_dispersion(
    tables: dict[str, list[dict[str, Any]]], out: _Collector, letters: dict[str, dict[str, str]]
) -> None:
    """Add the SD-or-SEM notes (see the module docstring) for the valid outcome rows."""
    outcomes = tables.get("outcomes", [])
    studies = {e["experiment_id"]: e["study_id"] for e in tables.get("experiments", [])}
    where = letters.get("outcomes", {})
    cv = _cv_notes(outcomes, studies)
    for row in outcomes:
        for check, message in (
            ("sd_sem_ratio", _ratio_note(row)),
            ("sd_notes_say_sem", _notes_note(row)),
            ("cv_outlier", cv.get(row["_row"])),
        ):
            if message:
                out.add("outcomes", row["_row"], "sd", row["sd"], message, "note", where.get("sd"), check)


__all__ = ["CV_MIN_ROWS", "CV_MIN_STUDIES", "CV_Z_THRESHOLD", "RATIO_TOLERANCE", "check_dispersion"]
