"""Any preclinical intervention (issue 25 item 3): the spec's words for the treatment reach
figures and report, and a table with no EV preparations runs without the MSC-EV-only checks,
with one note each and a Methods paragraph that claims only what was scored."""

from __future__ import annotations

import html as html_lib
import re

import pandas as pd
import pytest

import evmeta as em
from evmeta.analysis.intervention import NO_EV, has_ev_preparations, without_ev_checks
from evmeta.analysis.spec import parse_spec
from evmeta.errors import SpecError
from evmeta.harmonize.quality import syrcle_columns
from evmeta.report.methods import MISEV_REFERENCE, SYRCLE_REFERENCE, scoring_sentence
from tests.conftest import ROOT

RIC = ROOT / "tests/data/ric/ric_infarct_volume_wide.csv"
RIC_MAP = ROOT / "extraction/maps/ric_infarct_volume.toml"
RAW_EXCEPTION = re.compile(r"Traceback|KeyError|\bnan\b")


def _spec(analysis: dict | None = None, **sections):
    return parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx", **(analysis or {})}, **sections})


# --- the spec's words ---------------------------------------------------------------------


def test_intervention_defaults_and_short_forms():
    default = _spec().analysis
    assert (default.intervention, default.treated) == ("MSC-EVs", "EV")
    drug = _spec({"intervention": "  rapamycin "}).analysis
    assert (drug.intervention, drug.treated) == ("rapamycin", "treated")
    named = _spec({"intervention": "remote ischemic conditioning", "intervention_short": "RIC"}).analysis
    assert named.treated == "RIC"
    with pytest.raises(SpecError, match="intervention"):
        _spec({"intervention": "   "})
    with pytest.raises(SpecError, match="intervention_short"):
        _spec({"intervention_short": "x" * 21})


def test_forest_plot_takes_the_words_as_keywords():
    from evmeta.plots import forest_plot

    table = pd.DataFrame(
        {
            "yi": [0.5, 1.0, 0.2],
            "vi": [0.1, 0.2, 0.15],
            "label": ["A 2001", "B 2002", "C 2003"],
            "n_treat": [8, 8, 6],
            "n_control": [8, 8, 6],
        }
    )
    fit = em.meta_analysis(table)

    def texts(figure):
        return {t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text"))}

    words = texts(forest_plot(fit, columns=("label", "n"), treatment="rapamycin", treated="treated"))
    assert "favours rapamycin →" in words and "n treated/ctrl" in words
    assert not [w for w in words if re.search(r"\bEVs?\b", w)]
    journal = texts(forest_plot(fit, layout="revman", treatment="rapamycin"))
    assert {"Favours control", "Favours rapamycin"} <= journal
    assert "Favours [experimental]" in texts(forest_plot(fit, layout="revman"))  # RevMan's placeholder


# --- what was scored ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rob", "misev", "expected"),
    [
        (True, 3, "Risk of bias was judged with SYRCLE's tool and characterization quality"),
        (True, None, "Risk of bias was judged with SYRCLE's tool."),
        (False, 3, "Characterization quality was scored as the fraction of MISEV2018"),
        (False, 0, ""),  # EV preparations with no item reported: nothing was scored
        (False, None, ""),
    ],
)
def test_the_scoring_sentence_claims_only_what_was_scored(rob, misev, expected):
    table = pd.DataFrame({"yi": [0.1, 0.2], "misev_items_reported": [misev, 0]})
    for item in syrcle_columns():
        table[item] = ["low", "high"] if rob else [None, None]
    sentence = scoring_sentence(table)
    assert sentence.startswith(expected) if expected else sentence == ""


# --- the gate -----------------------------------------------------------------------------------


def test_without_ev_checks_leaves_out_each_ev_only_analysis_once():
    spec = _spec(
        filters={"isolation_family": ["size-based"], "min_quality_score": 0.3},
        frequentist={
            "subgroups": ["isolation_method", "species"],
            "meta_regression": "~ isolation_method + quality_score + species",
            "scale": "~ isolation_method",
        },
        figures={"forest_by": "isolation_family"},
    )
    non_ev = pd.DataFrame({"prep_id": ["P1", "P2"], "preparation_kind": ["non_ev", "non_ev"]})
    changed, notes = without_ev_checks(spec, non_ev)
    f = changed.frequentist
    assert f.subgroups == ["species"] and f.meta_regression == "~ species" and f.scale is None
    assert changed.bayesian.mods is None and changed.figures.forest_by is None
    assert changed.filters.isolation_family == [] and changed.filters.min_quality_score == 0
    assert len(notes) == 7 and all(NO_EV in note for note in notes)
    assert notes[0] == f"subgroups by isolation_method: not analysed, because {NO_EV}."
    assert "location-scale model: not fitted, because its moderator(s) 'isolation_method'" in " ".join(notes)
    mixed = non_ev.assign(preparation_kind=["non_ev", None])  # a blank kind is an MSC-EV batch
    assert has_ev_preparations(mixed)
    assert without_ev_checks(spec, mixed) == (spec, [])


def _text(path) -> str:
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<script.*?</script>|<style.*?</style>|<svg.*?</svg>", "", page, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_table_of_another_intervention_runs_without_ev_words_or_checks(tmp_path):
    """The real RIC table (remote ischemic conditioning, preparation_kind = non_ev) with
    intervention = "rapamycin": forest captions, Methods and summary of findings name it;
    EV-only analyses are left out with one note each; no SYRCLE or MISEV claim."""
    from evmeta.schema.wide_import import import_wide

    import_wide(RIC, RIC_MAP, tmp_path / "ric.xlsx")
    spec = tmp_path / "rapa.toml"
    spec.write_text(
        '[analysis]\nname = "rapa"\nextraction = "ric.xlsx"\nintervention = "rapamycin"\n'
        '[comparisons]\nmeasure = "SMD"\n[bayesian]\nenabled = false\n'
        '[figures]\nformats = ["svg"]\nforest_by = "species"\n'
    )
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    table = run.tables.pooled
    assert (table["preparation_kind"] == "non_ev").all()
    assert table[["isolation_method", "quality_score", "misev_items_reported"]].isna().all().all()
    for note in run.notes:
        assert not RAW_EXCEPTION.search(note), note
    assert (
        "sensitivity analysis at low risk of bias: not run, because no risk-of-bias judgements are entered."
        in run.notes
    )
    certainty = run.tables.certainty.set_index("domain")
    assert (
        certainty.loc["risk_of_bias", "reason"] == "no SYRCLE judgements were entered for these comparisons"
    )
    ev_notes = [n for n in run.notes if NO_EV in n]
    for start in (
        "subgroups by isolation_method",
        "meta-regression",
        "dose-response",
        "isolation-method evidence",
    ):
        assert sum(n.startswith(start) for n in ev_notes) == 1, (start, ev_notes)
    # Every EV word of the report is in a note about the EV checks left out.
    text = _text(run.output / "report.html")
    assert "comparing each arm given rapamycin with the control arm" in text
    assert "positive values favour rapamycin" in text
    assert "MISEV" not in text and "Risk of bias was judged" not in text
    assert SYRCLE_REFERENCE not in text and MISEV_REFERENCE not in text
    # (as notes and as the reason a model was not fitted)
    without_notes = re.sub(r"[^.]*has no EV preparations[^.]*\.", "", text)
    assert not re.findall(r"\bEVs?\b|vesicle", without_notes), re.findall(
        r".{60}\bEVs?\b.{60}", without_notes
    )
    pages = sorted(run.output.glob("forest*.svg"))
    assert pages
    svg = " ".join(page.read_text(encoding="utf-8") for page in pages)
    assert "favours rapamycin →" in svg and "n treated/ctrl" in svg
    assert not re.search(r"\bEVs?\b|Isolation", svg)


def test_an_ev_table_keeps_its_checks_and_names_msc_evs(tmp_path):
    """The example (MSC-EVs, MISEV items and SYRCLE judgements entered): nothing is left
    out for want of EV preparations and the Methods claim both scorings."""
    from tests.conftest import EXAMPLE

    spec = tmp_path / "ev.toml"
    spec.write_text(
        f'[analysis]\nname = "ev"\nextraction = "{EXAMPLE}"\n[comparisons]\noutcomes = ["serum creatinine"]\n'
        "[bayesian]\nenabled = false\n[sensitivity]\nleave_one_out = false\n"
        '[figures]\nformats = ["svg"]\n'
    )
    run = em.run_analysis(spec, output=tmp_path / "out", quiet=True)
    assert not [n for n in run.notes if NO_EV in n]
    text = _text(run.output / "report.html")
    assert "comparing each arm given MSC-EVs with the control arm" in text
    assert "Risk of bias was judged with SYRCLE's tool and characterization quality" in text
    assert SYRCLE_REFERENCE in text and MISEV_REFERENCE in text
    svg = " ".join(p.read_text(encoding="utf-8") for p in run.output.glob("forest*.svg"))
    assert "favours MSC-EVs →" in svg and "n EV/ctrl" in svg
