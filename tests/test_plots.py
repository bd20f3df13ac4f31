"""Figures: return a Figure, accept ax=, journal formats (TrueType PDF, SVG text), and no
overlapping or clipped text in forest plots of 5, 40 and 300 rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
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


def _text_boxes(figure: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    boxes = []
    for ax in figure.axes:
        for text in ax.texts:
            if text.get_text().strip():
                box = text.get_window_extent(renderer)
                boxes.append((box.x0, box.y0, box.x1, box.y1))
    return np.array(boxes)


@pytest.mark.parametrize("k", [5, 40, 300])
@pytest.mark.parametrize("width", ["double", "single"])
def test_forest_text_never_overlaps_or_leaves_the_figure(k, width):
    fit = em.meta_analysis(_synthetic(k))
    figure = forest_plot(fit, width=width)
    boxes = _text_boxes(figure)
    w, h = figure.bbox.width, figure.bbox.height
    assert (boxes[:, 0] >= -0.5).all() and (boxes[:, 2] <= w + 0.5).all(), "text cut off at the sides"
    assert (boxes[:, 1] >= -0.5).all() and (boxes[:, 3] <= h + 0.5).all(), "text cut off at top or bottom"
    # Pairwise overlap of text boxes (shrunk by half a pixel to ignore touching edges).
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    overlap = (np.minimum(x1, x1.T) - np.maximum(x0, x0.T) > 0.5) & (
        np.minimum(y1, y1.T) - np.maximum(y0, y0.T) > 0.5
    )
    np.fill_diagonal(overlap, False)
    assert not overlap.any(), f"{overlap.sum() // 2} overlapping text pairs"
    assert figure.get_figheight() > (0.14 * k)  # height grows with the rows


def test_forest_variants(comparisons):
    fit = em.meta_analysis(comparisons)
    by = forest_plot(fit, by="isolation_method", sort_by="yi")
    texts = [t.get_text() for t in by.axes[0].texts]
    assert any(t.startswith("Test for subgroup differences") for t in texts)
    assert "favours EVs →" in texts and "← favours control" in texts
    assert any("Prediction" in t for t in texts)
    multilevel = em.multilevel_meta_analysis(comparisons, random=["study_id", "experiment_id"])
    assert isinstance(forest_plot(multilevel), Figure)
    bayes = em.bayesian_meta_analysis(comparisons, random=["study_id"], seed=1, draws=300, chains=2)
    shrunk = forest_plot(bayes, shrinkage=True)
    assert any("Bayesian" in t.get_text() for t in shrunk.axes[0].texts)
    plain = forest_plot(comparisons)  # rows only, no pooling
    assert not any(t.get_text().startswith("Overall") for t in plain.axes[0].texts)
    host = Figure(figsize=(7, 12))
    ax = host.add_subplot()
    assert forest_plot(fit, ax=ax) is host


def test_other_figures_accept_ax_and_return_figures(comparisons):
    fit = em.meta_analysis(comparisons)
    figures = [
        funnel_plot(fit, trim_fill=em.trim_and_fill(fit)),
        funnel_plot(fit, precision="sqrt_inv_n"),
        risk_of_bias_plot(comparisons),
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
    host = Figure()
    ax = host.add_subplot()
    assert funnel_plot(fit, ax=ax) is host


def test_pdf_embeds_truetype_and_svg_keeps_text(tmp_path, comparisons):
    paths = save_figure(forest_plot(em.meta_analysis(comparisons)), tmp_path / "forest")
    pdf = (tmp_path / "forest.pdf").read_bytes()
    # pdf.fonttype 42: TrueType outlines (FontFile2, as CIDFontType2), never Type 3 bitmaps/procedures.
    assert b"/FontFile2" in pdf and b"/CIDFontType2" in pdf and b"/Type3" not in pdf
    svg = (tmp_path / "forest.svg").read_text()
    assert "<text" in svg and "Overall" in svg
    assert not re.search(r"<path[^>]*id=\"DejaVuSans-", svg), "glyphs were converted to paths"
    png = (tmp_path / "forest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.suffix for p in paths] == [".pdf", ".svg", ".png"]
