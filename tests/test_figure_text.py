"""Issue 27 item 5 in the figures: one font family in every text of every figure (numbers
right-aligned in it, no mono font), vocabulary values in words (``focal cerebral
ischaemia``, never ``focal_cerebral_ischemia``), particle doses as ``1.3 × 10¹⁰`` and doses
per kg from a reference body weight marked. On the example's comparisons."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

import evmeta as em
from evmeta.harmonize.arm_doses import from_reference_weight
from evmeta.models import (
    bias_model_averaging,
    dose_response_meta_analysis,
    isolation_method_evidence,
    selection_model,
)
from evmeta.plots import (
    dose_response_plot,
    forest_plot,
    funnel_plot,
    moderator_plot,
    posterior_plot,
    prisma_diagram,
    risk_of_bias_plot,
)
from evmeta.plots._style import FONT_FAMILY
from evmeta.plots.bias_panel import bias_panel
from evmeta.plots.caterpillar import caterpillar_plot
from evmeta.plots.isolation_evidence import isolation_evidence_plot
from evmeta.plots.orchard import orchard_plot
from evmeta.review.prisma import PrismaCounts
from tests.conftest import EXAMPLE
from tests.test_figure_layout import pages_of

OUTCOMES = ["serum creatinine", "infarct volume", "infarct size"]
#: The example's disease models as codes and as the figures write them.
DISEASE_WORDS = {
    "aki_ischemia_reperfusion": "acute kidney injury (ischaemia-reperfusion)",
    "focal_cerebral_ischemia": "focal cerebral ischaemia",
    "myocardial_infarction": "myocardial infarction",
}


@pytest.fixture(scope="module")
def example():
    table = em.build_comparisons(em.read_extraction(EXAMPLE), outcome=OUTCOMES).table.copy()
    levels = sorted(table["isolation_method"].unique())
    table["isolation_method"] = pd.Categorical(
        table["isolation_method"], categories=["UC", *[v for v in levels if v != "UC"]]
    )
    assert set(table["disease_model"]) == set(DISEASE_WORDS)
    fit = em.meta_analysis(table, test="knha")
    return {
        "table": table,
        "fit": fit,
        "by_disease": em.subgroup_analysis(table, "disease_model", test="knha"),
        "by_method": em.subgroup_analysis(table, "isolation_method", test="knha"),
        "curve": dose_response_meta_analysis(table, "dose_ug_protein_per_kg", test="t"),
    }


def _texts(figure) -> list[Text]:
    """Every non-empty text artist of a figure (tick labels, legends and titles included)."""
    FigureCanvasAgg(figure).draw()
    return [t for t in figure.findobj(Text) if t.get_text().strip()]


def _all_words(result) -> str:
    return "\n".join(t.get_text() for page in pages_of(result) for t in _texts(page))


def _families(result) -> set[str]:
    return {t.get_fontname() for page in pages_of(result) for t in _texts(page)}


def test_every_figure_has_one_font_family(example):
    table, fit = example["table"], example["fit"]
    dosed = table.dropna(subset=["log10_dose_ug_protein_per_kg"]).reset_index(drop=True)
    counts = PrismaCounts(
        databases={"PubMed": 812, "Embase": 640}, duplicates_removed=300, removed_other=0, screened=1152,
        excluded_screening=1000, sought=152, not_retrieved=4, assessed=148,
        excluded_reasons={"not_in_vivo": 40, "no_control": 20}, studies_included=88, reports_included=88,
    )  # fmt: skip
    figures = {
        "forest": forest_plot(fit, subgroups=example["by_method"]),
        "forest revman": forest_plot(fit, subgroups=example["by_method"], layout="revman", rob=True, dose=True),
        "forest jama": forest_plot(fit, layout="jama", dose=True),
        "funnel": funnel_plot(fit, trim_fill=em.models.trim_and_fill(fit)),
        "risk of bias": risk_of_bias_plot(table),
        "dose-response curve": dose_response_plot(example["curve"], total=len(table)),
        "dose-response line": dose_response_plot(em.meta_analysis(dosed, mods="~ log10_dose_ug_protein_per_kg")),
        "moderators": moderator_plot(example["by_disease"]),
        "orchard": orchard_plot(em.meta_analysis(table, mods="~ isolation_method", scale="~ isolation_method")),
        "caterpillar": caterpillar_plot(fit),
        "bias panel": bias_panel(bias_model_averaging(table), selection_model(fit)),
        "isolation evidence": isolation_evidence_plot(isolation_method_evidence(table, reference="UC")),
        "prisma": prisma_diagram(counts),
        "posterior": posterior_plot(
            em.bayesian_meta_analysis(table, mods="~ isolation_method", random=["study_id"], seed=1)
        ),
    }
    for name, result in figures.items():
        assert _families(result) == {FONT_FAMILY}, name


def test_the_svg_files_of_a_figure_name_one_family(example, tmp_path):
    """What a journal receives: every text of the SVG (text kept as text) in the one family."""
    from evmeta.plots import save_figure

    paths = save_figure(forest_plot(example["fit"], subgroups=example["by_method"]), tmp_path / "forest", ("svg",))
    families = {m for p in paths for m in re.findall(r"font-family: ([^;\"]+)", p.read_text(encoding="utf-8"))}
    assert len(families) == 1 and families.pop().startswith(f"'{FONT_FAMILY}'")


def test_forest_numbers_line_up_in_the_main_family(example):
    """The estimate column is right-aligned in DejaVu Sans, whose digits share one width."""
    from evmeta.plots._text import text_width_pt

    widths = {text_width_pt(digit * 4, 7) for digit in "0123456789"}
    assert len(widths) == 1
    page = pages_of(forest_plot(example["fit"]))[0]
    intervals = [t for t in page.axes[0].texts if re.fullmatch(r"−?\d+\.\d\d \[−?\d+\.\d\d, −?\d+\.\d\d\]", t.get_text())]
    assert len(intervals) > 10
    assert {t.get_ha() for t in intervals} == {"right"} and len({t.get_position()[0] for t in intervals}) == 1


def test_disease_models_are_words_in_every_figure_that_shows_them(example):
    figures = {
        "forest": forest_plot(example["fit"], subgroups=example["by_disease"]),
        "forest column": forest_plot(example["fit"], columns=("label", "disease_model")),
        "forest revman": forest_plot(example["fit"], subgroups=example["by_disease"], layout="revman"),
        "moderators": moderator_plot(example["by_disease"]),
        "orchard": orchard_plot(example["by_disease"]),
        "dose-response": dose_response_plot(example["curve"], color_by="disease_model"),
    }
    for name, result in figures.items():
        shown = " ".join(_all_words(result).replace("-\n", "-").split())  # wrapped labels joined again
        assert "_" not in shown, (name, re.findall(r"\S*_\S*", shown)[:5])
        for words in DISEASE_WORDS.values():
            assert words in shown, (name, words)


def test_particle_doses_are_powers_of_ten_in_the_forest(example):
    shown = _all_words(forest_plot(example["fit"]))
    doses = re.findall(r"\d\.\d × 10[⁰¹²³⁴⁵⁶⁷⁸⁹]+ (?:p|CE)/kg", shown)
    assert doses, "the example has particle and cell-equivalent doses"
    assert not re.search(r"\de\d", shown)  # no '3.3e12'
    revman = _all_words(forest_plot(example["fit"], layout="revman", dose=True))
    assert re.search(r"\d\.\d × 10[⁰¹²³⁴⁵⁶⁷⁸⁹]+", revman)


def test_doses_from_a_reference_body_weight_are_marked(example):
    table, curve = example["table"], example["curve"]
    expected = int(from_reference_weight(curve.data, curve.dose).sum())
    assert 0 < expected < curve.k  # the example has both kinds
    figure = dose_response_plot(curve, total=len(table))
    rings = [c for c in figure.axes[0].collections if c.get_label() == "_reference weight"]
    assert len(rings) == 1 and len(rings[0].get_offsets()) == expected
    words = _all_words(figure)
    assert f"ringed ({expected})" in " ".join(words.split()) and "dose from reference body weight" in words
    # The forest's dose column: a dagger on exactly those doses, explained in a footnote.
    forest = _all_words(forest_plot(example["fit"]))
    marked = from_reference_weight(table, "dose_ug_protein_per_kg") & table["dose_ug_protein_per_kg"].notna()
    assert len(re.findall(r"(?:µg|mg)/kg†", forest)) == int(marked.sum())
    assert "† Dose per kg computed from the species' reference body weight" in forest
    revman = _all_words(forest_plot(example["fit"], layout="revman", dose=True))
    assert len(re.findall(r"/kg†", revman)) >= int(marked.sum())  # particle doses too
    assert "† Dose per kg computed from the species' reference body weight" in revman


def test_from_reference_weight_reads_the_provenance():
    table = pd.DataFrame(
        {
            "dose_provenance_ug_protein_per_kg": ["imputed", "derived", "reported", None],
            "dose_provenance_particles_per_kg": ["not_convertible", "imputed", "reported", "scaled"],
        }
    )
    assert from_reference_weight(table, "dose_ug_protein_per_kg").tolist() == [True, False, False, False]
    # Cumulative and log doses are judged by their per-administration dose.
    assert from_reference_weight(table, "log10_dose_total_particles_per_kg").tolist() == [False, True, False, False]
    assert not from_reference_weight(table, "cell_equivalents_per_kg").any()  # no column: none marked
    assert np.array_equal(from_reference_weight(table, "ug_protein_per_kg").index, table.index)
