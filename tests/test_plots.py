"""Figures: return a Figure, accept ax=, journal formats (TrueType PDF, SVG text), and no
overlapping or clipped text in forest plots of 5, 40 and 300 rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import evmeta as em
from evmeta.plots import (
    dose_response_plot,
    forest_plot,
    funnel_plot,
    moderator_plot,
    posterior_plot,
    risk_of_bias_plot,
    save_figure,
)
from tests.conftest import EXAMPLE
from tests.test_figure_layout import layout_problems, pages_of


@pytest.fixture(scope="module")
def comparisons():
    book = em.read_extraction(EXAMPLE)
    return em.build_comparisons(book, outcome=["serum creatinine", "infarct volume", "infarct size"])


def _synthetic(k: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.05, 0.8, size=k)
    return pd.DataFrame(
        {
            "yi": rng.normal(1.5, np.sqrt(vi + 0.4)),
            "vi": vi,
            "label": [f"Author{i} {2010 + i % 14}, EV arm {i % 3}" for i in range(k)],
            "n_treat": rng.integers(5, 13, size=k).astype(float),
            "n_control": rng.integers(5, 13, size=k).astype(float),
            "dose_ug_protein_per_kg": 10 ** rng.uniform(1, 4, size=k),
            "isolation_method": rng.choice(["UC", "SEC", "TFF+SEC", "precipitation"], size=k),
            "measure": "SMD",
        }
    )


@pytest.mark.parametrize("k", [5, 40, 300])
@pytest.mark.parametrize("width", ["double", "single"])
def test_forest_text_never_overlaps_or_leaves_the_figure(k, width):
    fit = em.meta_analysis(_synthetic(k))
    result = forest_plot(fit, width=width)
    pages = pages_of(result)
    for page in pages:
        assert not layout_problems(page)
        assert page.get_figheight() * 25.4 <= 240 + 1e-6
    total = sum(page.get_figheight() for page in pages)
    assert total > (0.14 * k)  # height grows with the rows
    if k == 300:
        assert len(pages) > 1
    if k == 5:
        assert len(pages) == 1
    one_page = forest_plot(fit, width=width, max_height_mm=None)
    assert isinstance(one_page, Figure) and not layout_problems(one_page)


def _all_texts(result) -> list[str]:
    return [t.get_text() for page in pages_of(result) for t in page.axes[0].texts]


def test_forest_variants(comparisons):
    fit = em.meta_analysis(comparisons)
    subgroups = em.subgroup_analysis(comparisons.table, "isolation_method")
    by = forest_plot(fit, subgroups=subgroups, sort_by="yi")
    texts = _all_texts(by)
    assert any(t.startswith("Test for subgroup differences") for t in texts)
    assert "favours EVs →" in texts and "← favours control" in texts
    assert any("95% prediction interval" in t for t in texts)
    grouped_only = _all_texts(forest_plot(fit, by="isolation_method"))  # headings, no fits
    assert not any(t.startswith("Subtotal") for t in grouped_only)
    multilevel = em.multilevel_meta_analysis(comparisons, random=["study_id", "experiment_id"])
    assert all(isinstance(page, Figure) for page in pages_of(forest_plot(multilevel)))
    bayes = em.bayesian_meta_analysis(comparisons, random=["study_id"], seed=1, draws=300, chains=2)
    shrunk = forest_plot(bayes, shrinkage=True)
    assert any("Bayesian" in t for t in _all_texts(shrunk))
    plain = forest_plot(comparisons)  # rows only, no pooling
    assert not any(t.startswith("Overall") for t in _all_texts(plain))
    host = Figure(figsize=(7, 12))
    ax = host.add_subplot()
    assert forest_plot(fit, ax=ax) is host


def test_other_figures_accept_ax_and_return_figures(comparisons):
    fit = em.meta_analysis(comparisons)
    figures = [
        funnel_plot(fit, trim_fill=em.models.trim_and_fill(fit)),
        funnel_plot(fit, precision="sqrt_inv_n"),
        risk_of_bias_plot(comparisons, kind="summary"),
        dose_response_plot(
            em.meta_analysis(
                comparisons.table.dropna(subset=["log10_dose_ug_protein_per_kg"]),
                mods="~ log10_dose_ug_protein_per_kg",
            )
        ),
        moderator_plot(em.subgroup_analysis(comparisons, "isolation_method")),
        posterior_plot(
            em.bayesian_meta_analysis(comparisons, mods="~ isolation_method", seed=1, draws=300, chains=2),
            term="isolation_method",
        ),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    # The example's 68 studies need two pages of traffic lights (each page a Figure).
    pages = risk_of_bias_plot(comparisons)
    assert len(pages) == 2 and all(isinstance(f, Figure) for f in pages)
    host = Figure()
    ax = host.add_subplot()
    assert funnel_plot(fit, ax=ax) is host


def test_pdf_embeds_truetype_and_svg_keeps_text(tmp_path, comparisons):
    paths = save_figure(forest_plot(em.meta_analysis(comparisons), max_height_mm=None), tmp_path / "forest")
    pdf = (tmp_path / "forest.pdf").read_bytes()
    # pdf.fonttype 42: TrueType outlines (FontFile2, as CIDFontType2), never Type 3 bitmaps/procedures.
    assert b"/FontFile2" in pdf and b"/CIDFontType2" in pdf and b"/Type3" not in pdf
    svg = (tmp_path / "forest.svg").read_text()
    assert "<text" in svg and "Overall" in svg
    assert not re.search(r"<path[^>]*id=\"DejaVuSans-", svg), "glyphs were converted to paths"
    png = (tmp_path / "forest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.suffix for p in paths] == [".pdf", ".svg", ".png"]
