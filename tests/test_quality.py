"""Characterization quality of preparations (evmeta.harmonize.quality)."""

from __future__ import annotations

import pandas as pd

from evmeta.harmonize.quality import characterization_quality, misev_columns


def test_purity_class_from_the_ratio_column():
    preparations = pd.DataFrame(
        {"prep_id": ["p1", "p2", "p3"], "particles_per_ug_protein": [5e10, 1e9, None]}
    )
    out = characterization_quality(preparations)
    assert out["purity_class"].tolist() == ["high", "impure", "unknown"]


def test_a_sheet_without_optional_columns_scores_nothing_reported():
    # Every item column is optional; a missing particles_per_ug_protein column used to raise
    # "'numpy.float64' object is not iterable" instead of giving an unknown purity.
    out = characterization_quality(pd.DataFrame({"prep_id": ["p1", "p2"]}))
    assert out.index.tolist() == ["p1", "p2"]
    assert out["purity_class"].tolist() == ["unknown", "unknown"]
    assert (out[misev_columns()] == 0).all().all()
    assert out["quality_score"].tolist() == [0.0, 0.0]
    assert out["isct_count"].tolist() == [0, 0]
