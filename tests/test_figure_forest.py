"""Forest plot content: unique wrapped labels, both weights, true minus, footnotes, the
test in the overall row, refusal of several outcomes per arm, '$' in labels (issue 17),
and multi-page output files."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import evmeta as em
from evmeta.errors import FigureError
from evmeta.plots import FigurePages, forest_plot, save_figure
from evmeta.plots._text import MINUS, comparison_labels, format_p, minus, wrap
from evmeta.plots.forest.layout import cell
from tests.conftest import EXAMPLE
from tests.test_figure_layout import layout_problems, pages_of


def _texts(result) -> list[str]:
    return [t.get_text() for page in pages_of(result) for t in page.axes[0].texts]


def _frame(k: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "yi": rng.normal(-0.4, 0.5, size=k),
            "vi": rng.uniform(0.05, 0.3, size=k),
            "study_id": ["LI2019", "LI2019B", "LI2019B", "OBRIEN", "OBRIEN", "X"][:k],
            "first_author": ["Li", "Li", "Li", "O'Brien $\\foo{$", "O'Brien $\\foo{$", "Xu"][:k],
            "year": [2019, 2019, 2019, 2020, 2020, 2021][:k],
            "label": [
                "Li 2019",
                "Li 2019, EV UC",
                "Li 2019, EV SEC",
                "O'Brien $\\foo{$ 2020",
                "O'Brien $\\foo{$ 2020",
                "Xu 2021",
            ][:k],
            "n_treat": [6, 8, 8, 5, 5, 7.0][:k],
            "n_control": [6, 4, 4, 5, 5, 3.5][:k],
            "dose_particles_per_kg": [1e10, np.nan, np.nan, np.nan, np.nan, np.nan][:k],
            "dose_cell_equivalents_per_kg": [np.nan, 2e6, np.nan, np.nan, np.nan, np.nan][:k],
            "dose_ug_protein_per_kg": [np.nan, np.nan, 100.0, 50.0, 50.0, 10.0][:k],
            "isolation_method": ["UC", "UC", "SEC", "SEC", "SEC", "UC"][:k],
            "measure": "SMD",
        }
    )


def test_dollar_signs_in_labels_are_drawn_literally(tmp_path):
    """Issue 17: mathtext used to crash on "O'Brien $\\foo{$"."""
    fit = em.meta_analysis(_frame(), test="knha")
    figure = forest_plot(fit, by="isolation_method")
    paths = save_figure(figure, tmp_path / "forest")
    assert all(p.stat().st_size > 0 for p in paths)
    assert any("O'Brien $\\foo{$ 2020" in t for t in _texts(figure))
    assert (
        "O&apos;Brien $\\foo{$" in (tmp_path / "forest.svg").read_text()
        or "O'Brien $\\foo{$" in (tmp_path / "forest.svg").read_text()
    )


def test_labels_are_unique_with_suffixes_and_never_truncated():
    labels = comparison_labels(_frame())
    assert labels.is_unique
    assert labels.iloc[0] == "Li 2019a"  # two studies named 'Li 2019': a and b
    assert labels.iloc[1] == "Li 2019b, EV UC" and labels.iloc[2] == "Li 2019b, EV SEC"
    assert labels.iloc[3] != labels.iloc[4]  # same label twice: told apart, never dropped
    long = "Nakamura 2019, EV precipitation with polyethylene glycol (E2)"
    lines = wrap(long, 60, 7)
    assert " ".join(lines) == long and len(lines) > 1  # wrapped, every character kept
    texts = _texts(forest_plot(em.meta_analysis(_frame()), width="single"))
    assert not any("…" in t for t in texts)


def test_weights_minus_footnotes_and_test_label():
    fit = em.meta_analysis(_frame(), test="knha")
    figure = forest_plot(fit, subgroups=em.subgroup_analysis(_frame(), "isolation_method", test="knha"))
    texts = _texts(figure)
    header = " ".join(texts[:8])
    assert "% overall" in header and "% in group" in header
    assert any(
        t.replace("\n", " ").startswith("Overall (random effects, REML, Knapp-Hartung)") for t in texts
    )
    assert any(MINUS in t for t in texts) and not any("[-" in t or ", -" in t for t in texts), (
        "hyphen used as a minus sign"
    )
    assert any(t.startswith("* Control group shared") for t in texts)
    assert any("p = particles" in t and "CE = cell equivalents" in t for t in texts)
    # Within-subgroup weights sum to 100 per subgroup; overall weights to 100 over all rows.
    numbers = [float(t) for t in texts if t.replace(".", "", 1).isdigit()]
    assert numbers.count(100.0) >= 3  # two subgroup rows and the overall row
    assert np.isclose(np.sum(fit.weights), 100)


def test_split_control_marked_whenever_n_differs_from_the_reported_n():
    """A split control is marked even when its share is whole (6 animals, 3 arms: 2), and
    a fractional share is shown to one decimal; an unsplit control is not marked."""
    assert cell(pd.Series({"n_treat": 11.0, "n_control": 2.0, "n_control_reported": 6.0}), "n") == "11/2*"
    assert (
        cell(pd.Series({"n_treat": 10.0, "n_control": 10 / 3, "n_control_reported": 10.0}), "n") == "10/3.3*"
    )
    assert cell(pd.Series({"n_treat": 8.0, "n_control": 8.0, "n_control_reported": 8.0}), "n") == "8/8"
    # A table without n_control_reported: a fractional control n still says it was split.
    assert cell(pd.Series({"n_treat": 7.0, "n_control": 3.5}), "n") == "7/3.5*"
    frame = _frame().assign(n_control=[6, 2, 2, 5, 5, 10 / 3], n_control_reported=[6, 6, 6, 5, 5, 10])
    texts = _texts(forest_plot(em.meta_analysis(frame)))
    assert "8/2*" in texts and "7/3.3*" in texts and "6/6" in texts
    assert any(t.startswith("* Control group shared") for t in texts)
    assert not any(re.search(r"\d\.\d\d+\*", t) for t in texts)  # never more than one decimal


def _long_frame(k: int = 150) -> pd.DataFrame:
    """Enough comparisons for three or more pages; split controls on rows 3 and 100 only,
    a particle dose (p/kg) on row 140 only."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "yi": rng.normal(0.5, 0.6, k),
            "vi": rng.uniform(0.05, 0.5, k),
            "label": [f"S{i}" for i in range(k)],
            "n_treat": 10.0,
            "n_control": 10.0,
            "n_control_reported": 10.0,
            "dose_ug_protein_per_kg": 100.0,
            "dose_particles_per_kg": np.nan,
            "dose_cell_equivalents_per_kg": np.nan,
            "group": np.where(np.arange(k) < 75, "A", "B"),
            "measure": "SMD",
        }
    )
    frame.loc[[3, 100], "n_control"] = 10 / 3
    frame.loc[140, ["dose_ug_protein_per_kg", "dose_particles_per_kg"]] = [np.nan, 2e10]
    return frame


@pytest.mark.parametrize(
    ("width", "columns"), [("single", ("n", "dose")), ("double", ("label", "n", "dose"))]
)
def test_footnotes_on_every_page_whose_rows_need_them(width, columns):
    """A multi-page forest plot explains '*' and 'p' on each page that shows them (not only
    on the last), and only there; every page still fits 240 mm with nothing overlapping.
    (At 85 mm the label column would push the dose column out.)"""
    fit = em.meta_analysis(_long_frame())
    pages = pages_of(forest_plot(fit, by="group", columns=columns, width=width, show_weights=False))
    assert len(pages) >= 3
    marked_pages, dosed_pages = [], []
    for number, page in enumerate(pages, start=1):
        texts = [t.get_text() for t in page.axes[0].texts]
        flat = [t.replace("\n", " ") for t in texts]
        marked = any(re.fullmatch(r"10/\d+(\.\d)?\*", t) for t in texts)
        particles = any(t.endswith(" p/kg") for t in texts)
        assert marked == any(t.startswith("* Control group shared") for t in flat), f"page {number}"
        assert particles == any("p = particles" in t for t in flat), f"page {number}"
        marked_pages += [number] * marked
        dosed_pages += [number] * particles
        assert page.get_figheight() * 25.4 <= 240 + 1e-6
        assert not layout_problems(page), layout_problems(page)[:5]
    assert marked_pages and marked_pages[0] < len(pages)  # a page before the last needs it
    assert dosed_pages and len(set(marked_pages) | set(dosed_pages)) >= 2


def test_weights_footnote_on_every_page():
    pages = pages_of(forest_plot(em.meta_analysis(_long_frame()), by="group", columns=("label", "n")))
    assert len(pages) >= 2
    for page in pages:
        flat = [t.get_text().replace("\n", " ") for t in page.axes[0].texts]
        assert any(t.startswith("Weights: percent of the overall model") for t in flat)
        assert not layout_problems(page)


def test_multilevel_overall_row_names_cr2():
    frame = _frame()
    frame["experiment_id"] = [f"E{i}" for i in range(len(frame))]
    fit = em.multilevel_meta_analysis(frame, random=["study_id", "experiment_id"], robust=True)
    assert any("CR2" in t for t in _texts(forest_plot(fit)))


def test_several_outcomes_per_arm_are_refused_with_advice():
    book = em.read_extraction(EXAMPLE)
    everything = em.build_comparisons(book)  # every outcome and time point
    with pytest.raises(FigureError, match=r"outcome=\[\.\.\.\]|timepoint='last'") as info:
        forest_plot(everything)
    assert "by='outcome'" in str(info.value) or "by='timepoint_label'" in str(info.value)
    last = em.build_comparisons(book, timepoint="last")
    panels = forest_plot(em.meta_analysis(last), by="outcome")
    texts = _texts(panels)
    assert not any(t.startswith("Overall") for t in texts)  # never pooled across outcomes


def test_pages_are_saved_as_one_pdf_and_numbered_files(tmp_path):
    rng = np.random.default_rng(1)
    k = 150
    frame = pd.DataFrame(
        {
            "yi": rng.normal(0.5, 0.6, k),
            "vi": rng.uniform(0.05, 0.5, k),
            "label": [f"Study {i}" for i in range(k)],
        }
    )
    pages = forest_plot(em.meta_analysis(frame), width="single")
    assert isinstance(pages, FigurePages) and len(pages) >= 3
    paths = save_figure(pages, tmp_path / "forest", ("pdf", "png", "svg"))
    names = sorted(p.name for p in paths)
    assert "forest.pdf" in names and "forest_1.png" in names and f"forest_{len(pages)}.svg" in names
    pdf = (tmp_path / "forest.pdf").read_bytes()
    assert len(re.findall(rb"/Type /Page[^s]", pdf)) == len(pages)
    for page in pages:
        assert not layout_problems(page)


def test_number_formats():
    assert minus("-0.25 [-1.00, 0.50]") == f"{MINUS}0.25 [{MINUS}1.00, 0.50]"
    assert minus("UC-DG 2-3") == "UC-DG 2-3"  # hyphens in words stay
    assert format_p(0.0000283) == "p < 0.001"
    assert format_p(0.0042) == "p = 0.004"
    assert format_p(0.153) == "p = 0.15"
