"""One experiment per shared control arm: the table rows that share a control, the control
n restored from every row sharing it, and the experiment's arms and outcome rows.
"""

from __future__ import annotations

import math
from typing import Any

from evmeta.schema.wide_import.log import _log
from evmeta.schema.wide_map import EXPERIMENT_FIELDS, OUTCOME_FIELDS, PREP_FIELDS, STATISTICS, WideMap


def _group_key(row: dict[str, Any], split: bool = False) -> tuple:
    """Rows of one experiment share this key. With a split control n the n typed per row may
    differ (10 animals over 3 arms typed 3.33/3.33/3.34 or 3/3/4): it is not part of the key,
    and the control's n is restored as the sum."""
    shared = (
        *EXPERIMENT_FIELDS,
        "outcome",
        "timepoint",
        "timepoint_unit",
        *(f"control_{s}" for s in STATISTICS if not (split and s == "n")),
    )
    return (row["study_id"], *(None if row.get(f) is None else str(row.get(f)) for f in shared))


def _whole(value: float, what: str, notes: list[str]) -> int:
    whole = round(value)
    if abs(value - whole) > 0.01:
        notes.append(f"{what} {value:g} is not a whole number; written as {whole}")
    return max(int(whole), 1)


def _statistics(row: dict[str, Any], arm: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {s: row.get(f"{arm}_{s}") for s in STATISTICS if s != "n"}
    for s in ("events", "total"):
        if out[s] is not None and float(out[s]).is_integer():
            out[s] = int(out[s])
    return {"n": n, **out}


def _experiment(
    members: list[dict[str, Any]],
    left_out: list[tuple[dict[str, Any], str]],
    exp: str,
    wide_map: WideMap,
    data: dict[str, list[dict[str, Any]]],
    preps: dict[tuple, str],
) -> list[dict[str, Any]]:
    """Rows of one experiment (a control arm and the treatment arms sharing it); log rows.

    ``left_out`` are table rows sharing this control whose treatment arm cannot be used
    (with the reason): a split control n was divided among them too, so the control's n is
    restored from every row sharing it; :func:`evmeta.build_comparisons` then divides it
    among the arms that are imported.
    """
    first, study = members[0], members[0]["study_id"]
    data["experiments"].append(
        {"experiment_id": exp, "study_id": study, **{f: first.get(f) for f in EXPERIMENT_FIELDS}}
    )
    row_notes: list[str] = []
    typed = [m["control_n"] for m in members] + [r["control_n"] for r, _ in left_out]
    n_c = math.fsum(typed) if wide_map.control_n_is_split else first["control_n"]
    control_n = _whole(n_c, f"{exp}: control n", row_notes)
    control_arm, control_outcome = f"{exp}-C", f"{exp}-O0"
    data["arms"].append(
        {"arm_id": control_arm, "experiment_id": exp, "role": "vehicle_control", "arm_label": "control"}
    )
    outcome = {f: first.get(f) for f in OUTCOME_FIELDS}
    data["outcomes"].append(
        {
            "outcome_id": control_outcome,
            "experiment_id": exp,
            "arm_id": control_arm,
            **outcome,
            **_statistics(first, "control", control_n),
            "notes": _control_note(members, left_out, typed, control_n, wide_map),
        }
    )
    log = [_log(row, "skipped", reason, control=control_outcome) for row, reason in left_out]
    for j, member in enumerate(members, start=1):
        prep_key = (study, *(str(member.get(f)) for f in PREP_FIELDS))
        if prep_key not in preps:
            preps[prep_key] = f"{study}-P{sum(1 for key in preps if key[0] == study) + 1}"
            data["preparations"].append(
                {"prep_id": preps[prep_key], "study_id": study, **{f: member.get(f) for f in PREP_FIELDS}}
            )
        arm, outcome_id = f"{exp}-A{j}", f"{exp}-O{j}"
        data["arms"].append(
            {
                "arm_id": arm,
                "experiment_id": exp,
                "role": "ev",
                "prep_id": preps[prep_key],
                "arm_label": member.get("treat_label"),
                "dose_text": member.get("dose_text"),
                "route": member.get("route"),
                **member.get("_moderators", {}),
            }
        )
        member["_experiment"] = exp
        remarks = list(row_notes)
        treat_n = _whole(member["treat_n"], "treatment n", remarks)
        data["outcomes"].append(
            {
                "outcome_id": outcome_id,
                "experiment_id": exp,
                "arm_id": arm,
                **outcome,
                **_statistics(member, "treat", treat_n),
                "notes": f"table row {member['_table_row']}",
            }
        )
        log.append(_log(member, "imported", "; ".join(remarks), outcome_id, control_outcome))
    return log


def _control_note(
    members: list[dict[str, Any]],
    left_out: list[tuple[dict[str, Any], str]],
    typed: list[float],
    control_n: int,
    wide_map: WideMap,
) -> str | None:
    """The control row's notes: which table rows share it, how its n was restored, and
    which of those rows were not imported (and why)."""
    k_table = len(members) + len(left_out)
    if k_table == 1:
        return None
    table_rows = sorted(m["_table_row"] for m in members) + [r["_table_row"] for r, _ in left_out]
    shown = ", ".join(map(str, sorted(table_rows)))
    note = f"control shared by {k_table} treatment arms (table rows {shown})"
    if wide_map.control_n_is_split:
        if len(set(typed)) == 1:
            note += f"; n restored as {typed[0]:g} x {k_table} = {control_n}"
        else:
            note += f"; n restored as {' + '.join(f'{n:g}' for n in typed)} = {control_n}"
    for row, reason in left_out:
        note += f"; table row {row['_table_row']} not imported: {reason}"
    if left_out:
        arms = "the imported arm uses" if len(members) == 1 else f"the {len(members)} imported arms share"
        note += f"; {arms} all {control_n} control animals"
    return note
