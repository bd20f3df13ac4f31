"""Harmonized doses for every EV arm of an extraction (table-level use of :mod:`doses`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import DoseError
from evmeta.harmonize.doses import (
    HARMONIZED_KEYS,
    PROVENANCE_ORDER,
    Dose,
    dose_from_columns,
    dose_reliability,
    harmonize_dose,
    parse_dose,
    purity_class,
)
from evmeta.schema.doses.schedule import MAX_DOSES
from evmeta.schema.preparation_kind import is_ev_kind


@lru_cache(maxsize=65536)
def _parse_cached(text: str, mass_quantity: str = "protein") -> Dose:
    return parse_dose(text, mass_quantity=mass_quantity)


def arm_mass_quantity(role: object, preparation_kind: object = None) -> str:
    """What a mass printed for an arm is: EV protein for an ``ev`` arm given an MSC-EV
    preparation, a drug's mass for any other (a positive control's '1 mg/kg dexamethasone',
    and every treated arm of a non-EV preparation: '5 mg/kg rapamycin' is not EV protein)."""
    return "protein" if role == "ev" and is_ev_kind(preparation_kind) else "drug_mass"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


#: Cumulative (total over the schedule) columns and the per-administration column each multiplies.
TOTAL_KEYS = {
    "total_ug_protein_per_kg": "ug_protein_per_kg",
    "total_particles_per_kg": "particles_per_kg",
    "total_cell_equivalents_per_kg": "cell_equivalents_per_kg",
}


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
        ``dose_`` with a ``dose_provenance_<key>`` column each; the schedule
        ``dose_n_doses`` (from ``arms.n_doses``, else the dose text, else 1),
        ``dose_n_doses_source`` (``arms``, ``dose_text`` or ``assumed``),
        ``dose_interval_days`` and ``dose_vehicle_volume_ul``; cumulative doses
        ``dose_total_ug_protein_per_kg``, ``dose_total_particles_per_kg`` and
        ``dose_total_cell_equivalents_per_kg`` (per-administration dose x ``n_doses``) with
        ``dose_provenance_total_<...>`` (that of the per-kg dose, or ``imputed`` when the
        number of doses is assumed); ``dose_cumulative_ug_protein_per_kg`` and
        ``dose_cumulative_particles_per_kg`` (same as the totals, kept for older callers);
        ``dose_body_weight_kg_used``, ``dose_reliability`` (ok / low),
        ``dose_reliability_reason`` and ``dose_note`` (why a dose could not be read or
        converted, how it was read, and plausibility remarks).
    """
    experiment = experiments.set_index("experiment_id")
    preparation = preparations.set_index("prep_id") if len(preparations) else pd.DataFrame()
    records = []
    # A row of arms, read by column name (pandas-stubs type every field as any scalar, None
    # included, which .loc refuses as a label).
    arm: Any
    for arm in arms.itertuples(index=False):
        exp = experiment.loc[arm.experiment_id]
        prep = (
            preparation.loc[arm.prep_id]
            if isinstance(arm.prep_id, str) and arm.prep_id in preparation.index
            else None
        )
        kind = prep.get("preparation_kind") if prep is not None else None
        dose, notes = _read_arm_dose(arm, arm_mass_quantity(getattr(arm, "role", "ev"), kind))
        if not is_ev_kind(kind):
            prep = None  # its isolation method and ratio are placeholders, not EV data
        row = _harmonized_row(dose, notes, exp, prep, reference_weights=reference_weights, km=km)
        if dose is None and arm.role == "ev" and not row["dose_note"]:
            row["dose_note"] = "no dose reported"
        row["arm_id"] = arm.arm_id
        row.update(_schedule_columns(arm, dose, row))
        records.append(row)
    columns = ["arm_id"]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
    return frame.set_index("arm_id")


def _read_arm_dose(arm: Any, mass_quantity: str) -> tuple[Dose | None, list[str]]:
    try:
        if _number(arm.dose_value) is not None and isinstance(arm.dose_unit, str):
            basis = arm.dose_basis if isinstance(arm.dose_basis, str) else None
            return dose_from_columns(float(arm.dose_value), arm.dose_unit, basis, mass_quantity=mass_quantity), []
        if isinstance(arm.dose_text, str) and arm.dose_text.strip():
            dose = _parse_cached(arm.dose_text.strip(), mass_quantity)
            return dose, list(dose.notes)
    except DoseError as exc:
        return None, [str(exc)]
    return None, []


def _harmonized_row(dose, notes, exp, prep, *, reference_weights, km) -> dict[str, object]:
    ratio = _number(prep["particles_per_ug_protein"]) if prep is not None else None
    method = prep["isolation_method"] if prep is not None else None
    out = None
    if dose is not None:
        try:
            out = harmonize_dose(
                dose,
                species=exp["species"],
                body_weight_kg=_number(exp["body_weight_kg"]),
                particles_per_ug=ratio,
                reference_weights=reference_weights,
                km=km,
            )
        except DoseError as exc:
            notes = [*notes, str(exc)]
    if out is None:
        row: dict[str, object] = {f"dose_{k}": np.nan for k in HARMONIZED_KEYS}
        row.update({f"dose_provenance_{k}": "not_convertible" for k in HARMONIZED_KEYS})
        row.update(
            dose_reported=None,
            dose_quantity=None,
            dose_basis=None,
            dose_body_weight_kg_used=np.nan,
            dose_reliability=None,
            dose_reliability_reason="",
            dose_note="; ".join(notes),
        )
        return row
    row = {f"dose_{k}": out[k] for k in HARMONIZED_KEYS}
    row.update({f"dose_provenance_{k}": out["provenance"][k] for k in HARMONIZED_KEYS})
    reliability, reason = dose_reliability(dose.quantity, purity_class(ratio), method)
    row.update(
        dose_reported=dose.text,
        dose_quantity=dose.quantity,
        dose_basis=dose.basis,
        dose_body_weight_kg_used=out["body_weight_kg_used"],
        dose_reliability=reliability,
        dose_reliability_reason=reason,
        dose_note="; ".join([*notes, *out["notes"]]),
    )
    return row


def _schedule_columns(arm: Any, dose: Dose | None, row: Mapping[str, Any]) -> dict[str, object]:
    """Number of doses, interval, vehicle and the cumulative doses with their provenance."""
    n_doses, source = _number(arm.n_doses), "arms"
    if n_doses is None and dose is not None and dose.n_doses is not None:
        n_doses, source = float(dose.n_doses), "dose_text"
    if n_doses is None:
        n_doses, source = 1.0, "assumed"
    # The range validation and read_schedule keep; checked again here because the count
    # multiplies into the totals (arms given to the API need not have been validated).
    usable = 1 <= n_doses <= MAX_DOSES
    interval = _number(getattr(arm, "dose_interval_days", None))
    if interval is None and dose is not None:
        interval = dose.interval_days
    columns: dict[str, object] = {
        "dose_n_doses": n_doses,
        "dose_n_doses_source": source,
        "dose_interval_days": np.nan if interval is None else interval,
        "dose_vehicle_volume_ul": np.nan
        if dose is None or dose.vehicle_volume_ul is None
        else dose.vehicle_volume_ul,
    }
    for total, per_dose in TOTAL_KEYS.items():
        value, label = row[f"dose_{per_dose}"], row[f"dose_provenance_{per_dose}"]
        columns[f"dose_{total}"] = value * n_doses if usable else np.nan
        if not usable:
            label = "not_convertible"
        elif label != "not_convertible" and source == "assumed":
            label = _weakest(label, "imputed")
        columns[f"dose_provenance_{total}"] = label
    if not usable:
        note = f"n_doses {n_doses:g} is outside 1-{MAX_DOSES:,}: cumulative doses not computed"
        columns["dose_note"] = "; ".join(filter(None, [str(row.get("dose_note") or ""), note]))
    columns["dose_cumulative_ug_protein_per_kg"] = columns["dose_total_ug_protein_per_kg"]
    columns["dose_cumulative_particles_per_kg"] = columns["dose_total_particles_per_kg"]
    return columns


def _weakest(*labels: str) -> str:
    return max(labels, key=PROVENANCE_ORDER.index)


def from_reference_weight(table: pd.DataFrame, dose: str) -> pd.Series:
    """Whether each row's dose in basis ``dose`` was computed with the species' reference
    body weight (a per-animal dose divided by it, or a per-kg dose multiplied by it, because
    the study reported no body weight).

    Parameters
    ----------
    table : DataFrame
        Rows with the ``dose_provenance_<key>`` columns of :func:`harmonize_arm_doses` (a
        comparison table).
    dose : str
        The basis, with or without ``dose_``/``log10_``: ``ug_protein_per_kg``,
        ``dose_total_particles_per_kg``, ``log10_dose_hed_ug_protein_per_kg``, ...

    Returns
    -------
    Series of bool
        On ``table``'s index; False where the table has no provenance column for the basis.

    Notes
    -----
    A per-administration conversion is ``imputed`` only when it used the reference body
    weight (no default particle ratio exists), and a human-equivalent dose inherits the
    label of the animal dose it scales. A cumulative dose is judged by its per-administration
    dose, because its own ``imputed`` label also covers an assumed number of doses.
    """
    column = reference_weight_column(dose)
    if column not in table.columns:
        return pd.Series(False, index=table.index)
    return table[column].astype("string").eq(REFERENCE_WEIGHT_LABEL).fillna(False).astype(bool)


#: Provenance of a per-administration dose converted with the species' reference body weight.
REFERENCE_WEIGHT_LABEL = "imputed"


def reference_weight_column(dose: str) -> str:
    """The provenance column that says whether a dose in basis ``dose`` used the reference
    body weight (``dose_total_particles_per_kg`` -> ``dose_provenance_particles_per_kg``)."""
    basis = str(dose).removeprefix("log10_").removeprefix("dose_")
    return f"dose_provenance_{TOTAL_KEYS.get(basis, basis)}"
