"""Issue 14 for the figures beside the forest plot: the bias panel, the isolation-method
evidence, the dose-response, risk-of-bias, posterior and funnel figures fit a journal page at
85 and 180 mm with no text overlapping or cut off (the check of tests/test_figure_layout.py),
and each defect the issue lists for them stays fixed."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from matplotlib.lines import Line2D

import evmeta as em
from evmeta.models import bias_model_averaging, isolation_method_evidence, selection_model
from evmeta.plots import dose_response_plot, funnel_plot, posterior_plot, risk_of_bias_plot
from evmeta.plots.bias_panel import bias_panel
from evmeta.plots.isolation_evidence import isolation_evidence_plot
from evmeta.plots.risk_of_bias import _items as syrcle_items
from tests.conftest import EXAMPLE
from tests.test_figure_layout import WIDTHS, assert_journal_ready, pages_of, visible_texts

OUTCOMES = ["serum creatinine", "infarct volume", "infarct size"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    table = em.build_comparisons(em.read_extraction(EXAMPLE), outcome=OUTCOMES).table.copy()
    levels = sorted(table["isolation_method"].unique())
    table["isolation_method"] = pd.Categorical(
        table["isolation_method"], categories=["UC", *[v for v in levels if v != "UC"]]
    )
    return table


@pytest.fixture(scope="module")
def evidence(table):
    fit = em.meta_analysis(table, test="knha")
    return {
        "fit": fit,
        "averaging": bias_model_averaging(table),
        "selection": selection_model(fit),
        "isolation": isolation_method_evidence(table, reference="UC"),
    }


def _texts(figure) -> list[str]:
    return [t.get_text() for t in visible_texts(figure)]


@pytest.mark.parametrize("width", WIDTHS)
def test_bias_panel_and_isolation_evidence_fit_both_widths(evidence, width):
    assert_journal_ready(bias_panel(evidence["averaging"], evidence["selection"], width=width), WIDTHS[width])
    assert_journal_ready(isolation_evidence_plot(evidence["isolation"], width=width), WIDTHS[width])


def test_bias_panel_reads_as_text_not_code(evidence):
    figure = bias_panel(evidence["averaging"], evidence["selection"])
    texts = _texts(figure)
    assert not [t for t in texts if "$" in t or "mathdefault" in t]  # symlog ticks were raw mathtext
    weights = figure.axes[1]
    assert [t.get_text() for t in weights.get_xticklabels()] == ["0", "0.01", "0.1", "1"]
    assert not [t for t in texts if "P = 0.00" in t or "P = 1.00" in t]
    names = [t.get_text().split(" (")[0] for t in figure.axes[2].get_yticklabels()]
    assert names == ["no bias", "selection", "PET", "PEESE", "model-averaged"]


@pytest.mark.parametrize("width", WIDTHS)
def test_dose_response_legends_are_apart_and_titled(table, width):
    dosed = table.dropna(subset=["log10_dose_ug_protein_per_kg"]).reset_index(drop=True)
    fit = em.meta_analysis(dosed, mods="~ log10_dose_ug_protein_per_kg")
    figure = dose_response_plot(fit, width=width, total=len(table))
    assert_journal_ready(figure, WIDTHS[width])
    groups, sizes = figure.legends
    assert groups.get_title().get_text() == "Isolation method"
    assert sizes.get_title().get_text() == "Weight (%)"
    # Group markers at one size (the data's bubbles are not the key); sizes only in the size key.
    assert len({h.get_markersize() for h in groups.legend_handles if isinstance(h, Line2D)}) == 1
    assert len({h.get_markersize() for h in sizes.legend_handles}) == len(sizes.legend_handles) > 1
    ax = figure.axes[0]
    assert f"{len(dosed)} of {len(table)} comparisons" in ax.get_title(loc="left").replace("\n", " ")
    assert "µg protein per kg" in ax.get_xlabel()
    # No two legend entries of the size key touch: rows are at least as tall as the bubbles.
    renderer = figure.canvas.get_renderer()
    boxes = sorted((h.get_window_extent(renderer) for h in sizes.legend_handles), key=lambda box: -box.y0)
    if sizes._ncols == 1:
        assert all(upper.y0 >= lower.y1 for upper, lower in itertools.pairwise(boxes))


def test_risk_of_bias_labels_study_level_rows_without_experiment_tags():
    rows = {
        "study_id": ["S1", "S2", "S3", "S3"],
        "experiment_id": ["S1-E1", "S2-E1", "S3-E1", "S3-E2"],
        "first_author": ["Li", "Li", "Chen", "Chen"],
        "year": [2019, 2019, 2020, 2020],
    }
    frame = pd.DataFrame(rows)
    items = syrcle_items()
    for column, _ in items:
        frame[column] = "low"
    frame.loc[3, items[0][0]] = "high"  # S3's second experiment was judged differently
    labels = [
        t.get_text()
        for page in pages_of(risk_of_bias_plot(frame))
        for ax in page.axes
        for t in ax.get_yticklabels()
    ]
    study_rows = [label for label in labels if label.startswith(("Li", "Chen"))]
    assert sorted(study_rows) == ["Chen 2020 (E1)", "Chen 2020 (E2)", "Li 2019a", "Li 2019b"]


def test_posterior_panels_are_named_in_words(table):
    fit = em.bayesian_meta_analysis(
        table, mods="~ isolation_method + quality_score", random=["study_id"], seed=1
    )
    figure = posterior_plot(fit)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert not [t for t in titles if "[T." in t or "tau[" in t or "_" in t]
    assert any("vs UC" in t for t in titles)  # the reference level is named
    assert len(titles) == len(fit.names) + len(fit.tau_names)  # intercept and quality score too
    assert all(ax.get_xlabel() for ax in figure.axes if ax.get_title())


def test_funnel_legend_has_a_swatch_for_every_band_and_the_pooled_line(evidence):
    figure = funnel_plot(evidence["fit"], trim_fill=em.models.trim_and_fill(evidence["fit"]), width="single")
    legend = figure.legends[0] if figure.legends else figure.axes[0].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(legend.legend_handles) == len(labels)
    assert any(label.startswith("p > 0.10") for label in labels)
    assert any(label.startswith("pooled estimate") for label in labels)
    assert_journal_ready(figure, WIDTHS["single"])
