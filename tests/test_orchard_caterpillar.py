"""Orchard and caterpillar plots: the numbers drawn are the model's, at 85 and 180 mm,
with text kept inside the figure; wrong inputs give a FigureError sentence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import FigureError
from evmeta.plots._style import save_figure
from evmeta.plots.caterpillar import caterpillar_plot
from evmeta.plots.orchard import orchard_plot, orchard_rows
from tests.conftest import ROOT
from tests.test_figure_layout import assert_journal_ready

LS = pd.DataFrame(json.loads((ROOT / "tests" / "reference" / "location_scale.json").read_text())["data"])
LS = LS.assign(study_id=LS["id"])


def test_orchard_rows_are_the_location_scale_predictions_per_level():
    fit = em.meta_analysis(LS, scale="~ meta")
    rows = orchard_rows(fit).set_index("level")
    wide = fit.predict(pd.DataFrame({"meta": ["no", "yes"]}))
    np.testing.assert_allclose(rows.loc[["no", "yes"], "pi_low"], wide["pi_low"], rtol=1e-12)
    assert rows["k"].sum() == fit.k and (rows["n_studies"] == rows["k"]).all()
    # Each level's prediction interval uses its own tau: wider where tau is larger.
    assert (
        rows.loc["yes", "pi_high"] - rows.loc["yes", "pi_low"]
        > rows.loc["no", "pi_high"] - rows.loc["no", "pi_low"]
    )


def test_orchard_rows_from_subgroups_and_meta_regression_agree_with_their_fits():
    sub = em.subgroup_analysis(LS, by="meta")
    rows = orchard_rows(sub).set_index("level")
    assert rows.loc["yes", "pred"] == pytest.approx(sub.fits["yes"].estimate)
    reg = em.meta_analysis(LS, mods="~ meta")
    rows = orchard_rows(reg).set_index("level")
    assert rows.loc["no", "pred"] == pytest.approx(reg.coefficients["estimate"].iloc[0])


@pytest.mark.parametrize("width", ["single", "double"])
def test_orchard_and_caterpillar_draw_at_journal_widths(tmp_path, width):
    methods = np.where(LS["meta"] == "yes", "precipitation", "TFF+SEC")  # long level names
    fit = em.meta_analysis(LS.assign(isolation_method=methods), scale="~ isolation_method")
    mm = {"single": 85, "double": 180}[width]
    assert_journal_ready(orchard_plot(fit, width=width), mm)  # width, page height, no text overlaps
    caterpillar = caterpillar_plot(em.meta_analysis(LS), width=width)
    assert_journal_ready(caterpillar, mm)
    paths = save_figure(caterpillar, tmp_path / "caterpillar", ("pdf", "png"))
    assert all(p.stat().st_size > 0 for p in paths)


def test_caterpillar_draws_every_comparison_sorted():
    fit = em.meta_analysis(LS)
    figure = caterpillar_plot(fit)
    ax = figure.axes[0]
    points = ax.collections[1].get_offsets()
    assert len(points) == fit.k
    assert np.all(np.diff(points[:, 0]) >= 0)


def test_wrong_inputs_are_sentences():
    with pytest.raises(FigureError, match="without moderators"):
        caterpillar_plot(em.meta_analysis(LS, mods="~ meta"))
    with pytest.raises(FigureError, match="give by="):
        orchard_plot(em.meta_analysis(LS))
    with pytest.raises(FigureError, match="no column"):
        orchard_plot(em.meta_analysis(LS), by="nothing")


def test_orchard_title_names_the_fits_level():
    figure = orchard_plot(em.subgroup_analysis(LS, by="meta", level=0.9))
    title = figure.axes[0].get_title()
    assert "90% CI" in title and "90% PI" in title and "95%" not in title
