"""harmonize's pairing of EV rows with their control rows (evmeta/harmonize/pairing.py),
with and without the pairing column ``arms.control_arm_id``."""

from __future__ import annotations

import pandas as pd

from evmeta.harmonize.pairing import AMBIGUOUS, pair_with_controls

GROUP = ["experiment_id", "outcome", "_time_key"]


def _rows(spec):
    """(outcome_id, arm_id, role, control_arm_id, time) -> outcome rows as harmonize sees them."""
    rows = []
    for i, (outcome_id, arm, role, control, time) in enumerate(spec, start=2):
        rows.append(
            {
                "outcome_id": outcome_id,
                "arm_id": arm,
                "role": role,
                "control_arm_id": control,
                "experiment_id": "E",
                "outcome": "infarct size",
                "_time_key": float(time),
                "_row": i,
                "n": 8,
                "mean_est": 30.0,
                "sd_est": 6.0,
                "dispersion_source": "sd",
                "events": None,
                "total": None,
                "higher_is_better": "no",
            }
        )
    return pd.DataFrame(rows)


def test_one_control_per_route_pairs_by_the_named_control():
    rows = _rows(
        [
            ("O1", "C-iv", "vehicle_control", None, 28),
            ("O2", "EV-iv", "ev", "C-iv", 28),
            ("O3", "C-im", "vehicle_control", None, 28),
            ("O4", "EV-im", "ev", "C-im", 28),
        ]
    )
    result = pair_with_controls(rows, GROUP)
    assert dict(zip(result.pairs["arm_id"], result.pairs["arm_id_c"], strict=True)) == {
        "EV-iv": "C-iv",
        "EV-im": "C-im",
    }
    assert all(len(d) == 0 for d, _ in result.dropped)


def test_several_controls_without_names_drop_the_whole_group_as_before():
    rows = _rows(
        [
            ("O1", "C1", "vehicle_control", None, 28),
            ("O2", "C2", "vehicle_control", None, 28),
            ("O3", "EV", "ev", None, 28),
        ]
    )
    result = pair_with_controls(rows, GROUP)
    assert result.pairs.empty
    dropped = {r: reason for d, reason in result.dropped for r in d["_row"]}
    assert dropped == {2: AMBIGUOUS, 3: AMBIGUOUS, 4: AMBIGUOUS}


def test_unnamed_ev_beside_a_named_one_and_a_named_control_without_a_row():
    rows = _rows(
        [
            ("O1", "C1", "vehicle_control", None, 28),
            ("O2", "C2", "vehicle_control", None, 28),
            ("O3", "EV1", "ev", "C1", 28),
            ("O4", "EV2", "ev", None, 28),
            ("O5", "EV3", "ev", "C3", 28),  # C3 has no row at 28 d
            ("O6", "C3", "vehicle_control", None, 7),
        ]
    )
    result = pair_with_controls(rows, GROUP)
    assert list(result.pairs["arm_id"]) == ["EV1"]
    dropped = {r: reason for d, reason in result.dropped for r in d["_row"]}
    assert dropped[5] == AMBIGUOUS
    assert "no single row of its control arm 'C3'" in dropped[6]
    assert 2 not in dropped and 3 not in dropped  # controls stay candidates (logged later if unused)


def test_a_single_control_still_pairs_every_unnamed_ev_row():
    rows = _rows(
        [
            ("O1", "C", "vehicle_control", None, 1),
            ("O2", "EV1", "ev", None, 1),
            ("O3", "EV2", "ev", "C", 1),
            ("O4", "EV3", "ev", None, 3),  # no control at 3 d
        ]
    )
    result = pair_with_controls(rows, GROUP)
    assert sorted(result.pairs["arm_id"]) == ["EV1", "EV2"]
    assert (result.pairs["arm_id_c"] == "C").all()
    dropped = {r: reason for d, reason in result.dropped for r in d["_row"]}
    assert dropped == {5: "no vehicle_control row for this outcome and time point"}
