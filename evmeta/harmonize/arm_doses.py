"""Harmonized doses for every EV arm of an extraction (table-level use of :mod:`doses`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd

from evmeta.errors import DoseError
from evmeta.harmonize.doses import (
    HARMONIZED_KEYS,
    Dose,
    dose_from_columns,
    dose_reliability,
    harmonize_dose,
    parse_dose,
    purity_class,
)


@lru_cache(maxsize=65536)
def _parse_cached(text: str) -> Dose:
    return parse_dose(text)


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def harmonize_arm_doses(
    arms: pd.DataFrame,
    experiments: pd.DataFrame,
    preparations: pd.DataFrame,
    *,
    reference_weights: Mapping[str, float] | None = None,
    km: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per arm with its dose in every basis, prefixed ``dose_``.

    The dose comes from ``dose_value``/``dose_unit``/``dose_basis`` when given, else from
    ``dose_text``. The experiment's ``body_weight_kg`` and the preparation's
    ``particles_per_ug_protein`` are used when reported.

    Returns
    -------
    DataFrame
        Indexed by ``arm_id``: ``dose_reported`` (what was read), ``dose_quantity``,
        ``dose_basis``, the eight harmonized keys of :func:`harmonize_dose` prefixed
        ``dose_`` with a ``dose_provenance_<key>`` column each, ``dose_cumulative_ug_protein_per_kg``
        and ``dose_cumulative_particles_per_kg`` (x ``n_doses``), ``dose_body_weight_kg_used``,
        ``dose_reliability`` (ok / low), ``dose_reliability_reason`` and ``dose_note``
        (why a dose could not be read or converted).
    """
    experiment = experiments.set_index("experiment_id")
    preparation = preparations.set_index("prep_id") if len(preparations) else pd.DataFrame()
    records = []
    for arm in arms.itertuples(index=False):
        row: dict[str, object] = {"arm_id": arm.arm_id}
        exp = experiment.loc[arm.experiment_id]
        prep = (
            preparation.loc[arm.prep_id]
            if isinstance(arm.prep_id, str) and arm.prep_id in preparation.index
            else None
        )
        ratio = _number(prep["particles_per_ug_protein"]) if prep is not None else None
        method = prep["isolation_method"] if prep is not None else None
        n_doses = _number(arm.n_doses) or 1.0
        note = ""
        dose = None
        try:
            if _number(arm.dose_value) is not None and isinstance(arm.dose_unit, str):
                dose = dose_from_columns(
                    float(arm.dose_value),
                    arm.dose_unit,
                    arm.dose_basis if isinstance(arm.dose_basis, str) else None,
                )
            elif isinstance(arm.dose_text, str) and arm.dose_text.strip():
                dose = _parse_cached(arm.dose_text.strip())
        except DoseError as exc:
            note = str(exc)
        if dose is None:
            if arm.role == "ev" and not note:
                note = "no dose reported"
            row.update({f"dose_{k}": np.nan for k in HARMONIZED_KEYS})
            row.update({f"dose_provenance_{k}": "not_convertible" for k in HARMONIZED_KEYS})
            row.update(
                dose_reported=None,
                dose_quantity=None,
                dose_basis=None,
                dose_body_weight_kg_used=np.nan,
                dose_reliability=None,
                dose_reliability_reason="",
            )
        else:
            out = harmonize_dose(
                dose,
                species=exp["species"],
                body_weight_kg=_number(exp["body_weight_kg"]),
                particles_per_ug=ratio,
                reference_weights=reference_weights,
                km=km,
            )
            row.update({f"dose_{k}": out[k] for k in HARMONIZED_KEYS})
            row.update({f"dose_provenance_{k}": out["provenance"][k] for k in HARMONIZED_KEYS})
            reliability, reason = dose_reliability(dose.quantity, purity_class(ratio), method)
            row.update(
                dose_reported=dose.text,
                dose_quantity=dose.quantity,
                dose_basis=dose.basis,
                dose_body_weight_kg_used=out["body_weight_kg_used"],
                dose_reliability=reliability,
                dose_reliability_reason=reason,
            )
            note = "; ".join(out["notes"])
        row["dose_n_doses"] = n_doses
        row["dose_cumulative_ug_protein_per_kg"] = row["dose_ug_protein_per_kg"] * n_doses
        row["dose_cumulative_particles_per_kg"] = row["dose_particles_per_kg"] * n_doses
        row["dose_note"] = note
        records.append(row)
    columns = ["arm_id"]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
    return frame.set_index("arm_id")
