"""Which comparisons enter a dose-response model: a harmonized dose basis, rows whose dose
was converted to it, and (for the sensitivity analysis) rows whose dose was not imputed.

A comparison's dose is that of its EV arm in one of the harmonized bases of
:func:`evmeta.harmonize.arm_doses.harmonize_arm_doses` (``dose_<key>`` with its
``dose_provenance_<key>``): protein, particles or cell equivalents, per animal, per kg or
human-equivalent per kg, per administration or cumulative (``dose_total_*``). Provenance
labels are ``reported`` (as printed), ``scaled`` (unit scaling only), ``derived`` (with the
study's own body weight, particle ratio or an FDA Km factor), ``imputed`` (with a reference
body weight for the species, or an assumed number of administrations) and
``not_convertible``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evmeta.errors import ModelError
from evmeta.harmonize.arm_doses import TOTAL_KEYS
from evmeta.harmonize.doses import HARMONIZED_KEYS

#: Harmonized dose bases (without the ``dose_`` prefix): every basis harmonize.doses gives,
#: and the cumulative doses of harmonize.arm_doses.
DOSE_BASES = (*HARMONIZED_KEYS, *TOTAL_KEYS)
#: Provenance labels kept by ``reported_only=True`` (everything but ``imputed``).
NOT_IMPUTED = ("reported", "scaled", "derived")
_NEEDED = ("yi", "vi", "study_id")


@dataclass(frozen=True)
class DoseSelection:
    """The rows of a comparison table that enter a dose-response model.

    Attributes
    ----------
    basis : str
        The harmonized basis, e.g. ``ug_protein_per_kg``.
    column : str
        The dose column, ``dose_<basis>``.
    rows : DataFrame
        The comparisons that entered (original index kept), with ``dose`` (the dose in
        ``basis`` units) and ``dose_provenance``.
    excluded : DataFrame
        The comparisons left out: ``comparison_id``, ``study_id`` and ``reason``.
    """

    basis: str
    column: str
    rows: pd.DataFrame
    excluded: pd.DataFrame


def readable_basis(basis: str) -> str:
    """``hed_ug_protein_per_kg`` -> ``human-equivalent µg protein per kg`` (for sentences)."""
    words = basis.removeprefix("dose_").replace("_", " ").replace("ug ", "µg ")
    return words.replace("hed ", "human-equivalent ").replace("total ", "cumulative ")


def dose_basis(dose: str) -> str:
    """``ug_protein_per_kg`` from ``dose_ug_protein_per_kg`` or ``ug_protein_per_kg``."""
    basis = str(dose).removeprefix("log10_").removeprefix("dose_")
    if basis not in DOSE_BASES:
        raise ModelError(
            f"unknown dose basis {dose!r}; valid doses: {', '.join('dose_' + b for b in DOSE_BASES)}"
        )
    return basis


def select_dosed(table: pd.DataFrame, dose: str, *, reported_only: bool = False) -> DoseSelection:
    """The comparisons with a positive, finite dose in basis ``dose`` (converted, and with
    ``reported_only`` not imputed), and every other comparison with the reason it is out.

    Raises
    ------
    ModelError
        An unknown basis, or a table without the dose column or ``yi``/``vi``/``study_id``.
    """
    basis = dose_basis(dose)
    column = f"dose_{basis}"
    missing = [c for c in (*_NEEDED, column) if c not in table.columns]
    if missing:
        raise ModelError(
            f"the comparison table lacks column(s) {', '.join(missing)}; build it with evmeta.build_comparisons"
        )
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    provenance_column = f"dose_provenance_{basis}"
    provenance = (
        table[provenance_column].astype("string").fillna("not_convertible")
        if provenance_column in table.columns
        else pd.Series("reported", index=table.index, dtype="string")
    )
    reasons = _reasons(table, values, provenance, basis, reported_only)
    keep = reasons.isna().to_numpy()
    rows = table[keep].copy()
    rows["dose"] = values[keep]
    rows["dose_provenance"] = provenance[keep].astype(str).to_numpy()
    ids = table["comparison_id"] if "comparison_id" in table.columns else pd.Series(table.index, index=table.index)
    excluded = pd.DataFrame(
        {"comparison_id": ids[~keep].to_numpy(), "study_id": table["study_id"][~keep].to_numpy(),
         "reason": reasons[~keep].to_numpy()}
    )
    return DoseSelection(basis, column, rows, excluded)


def _reasons(table, values, provenance, basis: str, reported_only: bool) -> pd.Series:
    """Why each row is left out (missing where it enters); the first reason that applies."""
    yi = pd.to_numeric(table["yi"], errors="coerce").to_numpy(dtype=float)
    vi = pd.to_numeric(table["vi"], errors="coerce").to_numpy(dtype=float)
    note = table["dose_note"].astype("string").fillna("") if "dose_note" in table.columns else None
    out = pd.Series(pd.NA, index=table.index, dtype="string")
    for position, index in enumerate(table.index):
        if not (np.isfinite(yi[position]) and np.isfinite(vi[position]) and vi[position] > 0):
            out[index] = "no effect size or sampling variance"
        elif not np.isfinite(values[position]):
            why = f": {note[index]}" if note is not None and note[index] else ""
            out[index] = f"dose not convertible to {readable_basis(basis)}{why}"
        elif values[position] <= 0:
            out[index] = f"dose {values[position]:g} is not positive, so it has no logarithm"
        elif reported_only and provenance[index] not in NOT_IMPUTED:
            out[index] = f"dose {provenance[index]} (sensitivity analysis keeps reported doses only)"
    return out
