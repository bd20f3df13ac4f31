"""Which control each EV outcome row is compared with, checked at validation.

An EV outcome row is compared with the ``vehicle_control`` row of the same experiment,
outcome and time point (a *group*), or with the row of the control arm its arm names in
``arms.control_arm_id``. Validation reports, at the cell, every EV row that harmonize
could not pair (:mod:`evmeta.harmonize.pairing` does the pairing):

- no control row in its group (one line per group, naming the other EV rows);
- several control rows in its group and no ``control_arm_id`` (one line per group: name
  each EV arm's control in ``arms.control_arm_id``, or make one experiment per control);
- a ``control_arm_id`` whose arm has no row (or several rows) in the group.

``arms.control_arm_id`` itself must name a ``vehicle_control`` arm of the same experiment.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evmeta.schema.validation.collector import _Collector, _row_ranges
from evmeta.schema.validation.suggest import did_you_mean

_TIME_TO_DAYS = {"hours": 1 / 24, "days": 1.0, "weeks": 7.0}
_ABBREVIATION = {"hours": "h", "days": "d", "weeks": "wk"}


def check_control_arms(
    tables: dict[str, list[dict[str, Any]]], out: _Collector, letters: dict[str, dict[str, str]]
) -> None:
    """Drop arms whose ``control_arm_id`` is not a vehicle_control arm of their experiment."""
    arms = {a["arm_id"]: a for a in tables.get("arms", [])}
    keep = []
    for arm in tables.get("arms", []):
        control_id = arm.get("control_arm_id")
        control = arms.get(control_id) if control_id else None
        problem = None
        if control_id and arm["role"] == "vehicle_control":
            problem = "a vehicle_control arm is not paired with a control; leave control_arm_id empty"
        elif control_id and control is None:
            same = [a for a, r in arms.items() if r["experiment_id"] == arm["experiment_id"]]
            problem = (
                f"{control_id!r} is not a valid arm_id on the arms sheet{did_you_mean(control_id, same)}"
            )
        elif control is not None and control["role"] != "vehicle_control":
            problem = f"arm {control_id!r} is a {control['role']} arm; control_arm_id must name a vehicle_control arm"
        elif control is not None and control["experiment_id"] != arm["experiment_id"]:
            problem = (
                f"arm {control_id!r} belongs to experiment {control['experiment_id']!r}, not "
                f"{arm['experiment_id']!r}; the control must be in the same experiment"
            )
        if problem:
            letter = letters["arms"].get("control_arm_id")
            out.add("arms", arm["_row"], "control_arm_id", control_id, problem, letter=letter)
            continue
        keep.append(arm)
    if "arms" in tables:
        tables["arms"] = keep


def _days(outcome: dict[str, Any]) -> float:
    if outcome.get("timepoint") is None:
        return -1.0
    return float(outcome["timepoint"]) * _TIME_TO_DAYS.get(outcome.get("timepoint_unit") or "days", 1.0)


def _when(outcome: dict[str, Any]) -> str:
    if outcome.get("timepoint") is None:
        return "without a time point"
    unit = _ABBREVIATION.get(outcome.get("timepoint_unit") or "days", "d")
    return f"at {float(outcome['timepoint']):g} {unit}"


def _broken_control(rows, arms, broken) -> int | None:
    """Excel row of an outcome row with errors that may be this group's missing control row.

    ``broken`` holds the key cells (as far as they could be read) of outcome rows that did
    not validate; such a row in the same experiment and outcome, at the same time point (or
    an unreadable one), of an arm that is not an EV arm, explains the missing control: the
    EV rows are then only a consequence of its errors.
    """
    first = rows[0]
    for row in broken:
        arm = arms.get(row.get("arm_id"))
        if arm is not None and arm["role"] != "vehicle_control":
            continue
        if row.get("experiment_id") not in (None, first["experiment_id"]):
            continue
        if row.get("outcome") not in (None, first["outcome"]):
            continue
        if row.get("_time_unreadable") or _days(row) == _days(first):
            return row["_row"]
    return None


def check_pairing(
    tables: dict[str, list[dict[str, Any]]],
    out: _Collector,
    letters: dict[str, dict[str, str]],
    broken: list[dict[str, Any]] | None = None,
) -> None:
    """Drop EV outcome rows that harmonize could not pair with a control row, with the reason.

    ``broken``: key cells of the outcome rows that did not validate (see :func:`_broken_control`).
    """
    arms = {a["arm_id"]: a for a in tables.get("arms", [])}
    outcomes = tables.get("outcomes", [])
    has_control_arm = {a["experiment_id"] for a in arms.values() if a["role"] == "vehicle_control"}
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in outcomes:
        groups[(row["experiment_id"], row["outcome"], _days(row))].append(row)
    dropped: set[int] = set()
    for (experiment, _, _), rows in groups.items():
        # An experiment without any control arm is already an error of its own.
        if experiment not in has_control_arm:
            continue
        controls = [r for r in rows if arms[r["arm_id"]]["role"] == "vehicle_control"]
        evs = [r for r in rows if arms[r["arm_id"]]["role"] == "ev"]
        unnamed = [r for r in evs if not arms[r["arm_id"]].get("control_arm_id")]
        for row in evs:
            control_id = arms[row["arm_id"]].get("control_arm_id")
            if control_id:
                found = [c for c in controls if c["arm_id"] == control_id]
                if len(found) != 1:
                    _named_missing(row, control_id, found, out, letters)
                    dropped.add(row["_row"])
        if unnamed and len(controls) != 1:
            if not controls and _broken_control(unnamed, arms, broken or []) is not None:
                # The control row is there but has errors: its own line says so, and these
                # rows pair once it is fixed (harmonize logs them while it is not).
                continue
            _report_group(unnamed, controls, outcomes, arms, out, letters)
            dropped.update(r["_row"] for r in unnamed)
    if "outcomes" in tables:
        tables["outcomes"] = [r for r in outcomes if r["_row"] not in dropped]


def _named_missing(row, control_id, found, out: _Collector, letters) -> None:
    what = "no row" if not found else f"{len(found)} rows ({_row_ranges([c['_row'] for c in found])})"
    out.add(
        "outcomes",
        row["_row"],
        "arm_id",
        row["arm_id"],
        f"its control arm {control_id!r} (arms.control_arm_id) has {what} for {row['outcome']!r} "
        f"{_when(row)}; add exactly one row of the control arm for this outcome and time point",
        letter=letters["outcomes"].get("arm_id"),
    )


def _report_group(unnamed, controls, outcomes, arms, out: _Collector, letters) -> None:
    """One line for a group whose EV rows cannot be paired: no control row, or several."""
    first, others = unnamed[0], unnamed[1:]
    experiment, name = first["experiment_id"], first["outcome"]
    column = "arm_id"
    also = f" (nor EV rows {_row_ranges([r['_row'] for r in others])})" if others else ""
    if controls:
        rows = _row_ranges([c["_row"] for c in controls])
        control_arms = ", ".join(sorted({repr(c["arm_id"]) for c in controls}))
        message = (
            f"experiment {experiment!r} has {len(controls)} vehicle_control rows for {name!r} "
            f"{_when(first)} (outcomes rows {rows}; arms {control_arms}), so this EV row cannot be "
            f"paired{also}: name each EV arm's control in arms.control_arm_id, or make one "
            "experiment per control"
        )
    else:
        hint, column = _near_misses(first, outcomes, arms)
        message = (
            f"no vehicle_control row for {name!r} {_when(first)} in experiment {experiment!r}, so "
            f"this EV row cannot be compared{also}: add the control arm's row for this outcome and "
            f"time point{hint}"
        )
    out.add(
        "outcomes",
        first["_row"],
        column,
        first.get(column),
        message,
        letter=letters["outcomes"].get(column),
        dependents=tuple(("outcomes", r["_row"]) for r in others),
    )


def _near_misses(row, outcomes, arms) -> tuple[str, str]:
    """What the experiment's control rows do have (the outcome spelled otherwise, other time
    points), and the cell most likely wrong: ``outcome``, ``timepoint`` or ``arm_id``."""
    controls = [
        o
        for o in outcomes
        if o["experiment_id"] == row["experiment_id"] and arms[o["arm_id"]]["role"] == "vehicle_control"
    ]
    same_name = [o for o in controls if o["outcome"] == row["outcome"]]
    spelled = sorted(
        {
            o["outcome"]
            for o in controls
            if o["outcome"].casefold().strip() == row["outcome"].casefold().strip()
        }
        - {row["outcome"]}
    )
    hints = []
    column = "arm_id"
    if spelled:
        hints.append(f"the control rows spell the outcome {spelled[0]!r}")
        column = "outcome"
    if same_name:
        times = sorted({_days(o) for o in same_name})
        shown = ", ".join(_when(next(o for o in same_name if _days(o) == t)) for t in times)
        hints.append(f"the control arm has this outcome {shown}")
        column = "timepoint"
    return (f" ({'; '.join(hints)})" if hints else ""), column


__all__ = ["check_control_arms", "check_pairing"]
