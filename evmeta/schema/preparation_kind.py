"""Which preparations are MSC-EV batches, and the columns that describe only those.

A review of another preclinical intervention (a drug, a diet, a procedure such as remote
ischemic conditioning, cells) uses the same workbook: its preparations say
``preparation_kind = non_ev``. For them the EV-only fields (isolation method, MSC tissue
source, MISEV and EV-METRIC items, the particle-to-protein ratio) are placeholders at most,
so the comparisons leave them blank (never a score of 0 or a placeholder 'UC'), and a mass
dose is a drug's mass, never EV protein.
"""

from __future__ import annotations

import pandas as pd

#: The ``preparation_kind`` of a preparation that is not an MSC-EV batch (blank = ``msc_ev``).
NON_EV = "non_ev"
#: Preparation columns (and the columns derived from them) that describe only MSC-EV batches.
EV_ONLY_COLUMNS = (
    "isolation_method",
    "isolation_family",
    "isolation_gmp_scalable",
    "msc_tissue_source",
    "msc_species",
    "donor_match",
    "culture_system",
    "medium",
    "preconditioning",
    "particles_per_ug_protein",
    "quality_score",
    "misev_items_reported",
    "evmetric_like",
    "isct_count",
    "purity_class",
)


def is_ev_kind(kind: object) -> bool:
    """True unless ``kind`` is :data:`NON_EV` (a blank cell is an MSC-EV preparation)."""
    return not (isinstance(kind, str) and kind == NON_EV)


def ev_preparation_mask(preparations: pd.DataFrame) -> pd.Series:
    """Boolean Series (the preparations' index): True for an MSC-EV preparation."""
    kinds = preparations.get("preparation_kind", pd.Series(None, index=preparations.index, dtype=object))
    return kinds.map(is_ev_kind).astype(bool)
