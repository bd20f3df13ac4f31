"""Every figure at 85 and 180 mm, on the example and on a real 102-comparison data set
(metadat's dat.curtis1998, tests/data/curtis1998.csv): no two texts overlap, no text leaves
the page, and every page fits a 240 mm journal page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import evmeta as em
from evmeta.plots import (
    FigurePages,
    dose_response_plot,
    forest_plot,
    funnel_plot,
    moderator_plot,
    posterior_plot,
    risk_of_bias_plot,
)
from tests.conftest import DATA, EXAMPLE

WIDTHS = {"single": 85.0, "double": 180.0}
PAGE_MM = 240.0


def visible_texts(figure: Figure) -> list:
    """Every non-empty visible text the figure draws: texts, titles, axis and tick labels,
    legend entries and titles."""
    FigureCanvasAgg(figure).draw()
    texts = list(figure.texts)
    for legend in figure.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    for ax in figure.axes:
        texts += [*ax.texts, ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                lo, hi = axis.get_view_interval()
                for tick in axis.get_major_ticks():
                    if min(lo, hi) - 1e-9 <= tick.get_loc() <= max(lo, hi) + 1e-9:
                        texts += [tick.label1, tick.label2]
        legend = ax.get_legend()
        if legend is not None:
            texts += [*legend.get_texts(), legend.get_title()]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def layout_problems(figure: Figure) -> list[str]:
    """Texts that overlap another text or leave the figure (a half-pixel tolerance at 100 dpi)."""
    texts = visible_texts(figure)  # draws on an Agg canvas
    renderer = figure.canvas.get_renderer()
    boxes = np.array([tuple(t.get_window_extent(renderer).extents) for t in texts])
    if not len(boxes):
        return []
    w, h = figure.bbox.width, figure.bbox.height
    problems = [
        f"outside the figure: {t.get_text()!r}"
        for t, (x0, y0, x1, y1) in zip(texts, boxes, strict=True)
        if x0 < -0.5 or y0 < -0.5 or x1 > w + 0.5 or y1 > h + 0.5
    ]
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    overlap = (np.minimum(x1, x1.T) - np.maximum(x0, x0.T) > 0.5) & (
        np.minimum(y1, y1.T) - np.maximum(y0, y0.T) > 0.5
    )
    np.fill_diagonal(overlap, False)
    for i, j in zip(*np.nonzero(np.triu(overlap)), strict=True):
        problems.append(f"overlap: {texts[i].get_text()!r} and {texts[j].get_text()!r}")
    return problems


def pages_of(result) -> list[Figure]:
    return list(result) if isinstance(result, FigurePages) else [result]


def assert_journal_ready(result, width_mm: float) -> None:
    for page in pages_of(result):
        assert page.get_figwidth() * 25.4 == pytest.approx(width_mm, abs=0.01)
        assert page.get_figheight() * 25.4 <= PAGE_MM + 1e-6, "page taller than 240 mm"
        problems = layout_problems(page)
        assert not problems, "\n".join(problems[:10])


@pytest.fixture(scope="module")
def example():
    book = em.read_extraction(EXAMPLE)
    comparisons = em.build_comparisons(book, outcome=["serum creatinine", "infarct volume", "infarct size"])
    table = comparisons.table.copy()
    levels = sorted(table["isolation_method"].unique())
    table["isolation_method"] = pd.Categorical(
        table["isolation_method"], categories=["UC", *[v for v in levels if v != "UC"]]
    )
    fit = em.meta_analysis(table, test="knha")
    dosed = table.dropna(subset=["log10_dose_ug_protein_per_kg"]).reset_index(drop=True)
    return {
        "table": table,
        "comparisons": comparisons,
        "fit": fit,
        "dose": em.meta_analysis(dosed, mods="~ log10_dose_ug_protein_per_kg"),
        "subgroups": em.subgroup_analysis(table, "isolation_method"),
    }


@pytest.fixture(scope="module")
def curtis() -> pd.DataFrame:
    """102 comparisons, 29 papers, 3 functional groups (real data)."""
    frame = pd.read_csv(DATA / "curtis1998.csv")
    frame["label"] = "Paper " + frame["paper"].astype(str) + ", " + frame["genus"].str.title()
    frame["study_id"] = frame["paper"].astype(str)
    frame["measure"] = "SMD"
    return frame


@pytest.mark.parametrize("width", WIDTHS)
def test_every_example_figure_fits_and_nothing_overlaps(example, width):
    fit = example["fit"]
    figures = {
        "forest": forest_plot(fit, by="isolation_method", width=width),
        "forest, no subgroups": forest_plot(fit, width=width),
        "funnel": funnel_plot(fit, trim_fill=em.models.trim_and_fill(fit), width=width),
        "risk of bias": risk_of_bias_plot(example["comparisons"], width=width),
        "dose-response": dose_response_plot(example["dose"], width=width, total=len(example["table"])),
        "moderators": moderator_plot(example["subgroups"], width=width),
    }
    for name, figure in figures.items():
        try:
            assert_journal_ready(figure, WIDTHS[width])
        except AssertionError as error:
            raise AssertionError(f"{name} at {width}: {error}") from None


@pytest.mark.parametrize("width", WIDTHS)
def test_every_figure_on_a_real_100_comparison_data_set(curtis, width):
    fit = em.meta_analysis(curtis, test="knha")
    assert fit.k == 102
    forest = forest_plot(fit, by="fungrp", width=width)
    assert isinstance(forest, FigurePages) and len(forest) >= 2
    for figure in [
        forest,
        forest_plot(fit, width=width),
        funnel_plot(fit, trim_fill=em.models.trim_and_fill(fit), width=width),
        moderator_plot(em.subgroup_analysis(curtis, "fungrp"), width=width),
    ]:
        assert_journal_ready(figure, WIDTHS[width])
    # Every comparison is on exactly one page, and subgroups continue across pages.
    study_rows = sum(
        1
        for page in forest
        for t in page.axes[0].texts
        if t.get_text().startswith("Paper ") or t.get_text().split("\n")[0].startswith("Paper ")
    )
    assert study_rows == 102
    assert any(t.get_text().endswith("(continued)") for page in forest[1:] for t in page.axes[0].texts)


@pytest.mark.parametrize("width", WIDTHS)
def test_posterior_figure_fits(example, width):
    fit = em.bayesian_meta_analysis(
        example["table"], mods="~ isolation_method + quality_score", random=["study_id"], seed=1
    )
    assert_journal_ready(posterior_plot(fit, width=width), WIDTHS[width])
