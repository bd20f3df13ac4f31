"""The GRADE rules of evmeta.report.certainty at their thresholds, the overall certainty,
the reviewer's overrides, the CSV rows and the Word document read back cell by cell."""

from __future__ import annotations

import numpy as np
import pytest

from evmeta.report.certainty import (
    CertaintySettings,
    OutcomeEvidence,
    Override,
    optimal_information_size,
    rules,
    summary_of_findings,
    table_rows,
)
from evmeta.report.certainty.result import LEVELS

NS, S, VS = rules.NOT_SERIOUS, rules.SERIOUS, rules.VERY_SERIOUS


# ---------------------------------------------------------------- optimal information size
@pytest.mark.parametrize("d", [0.2, 0.5, 0.8, 1.0, 1.5])
def test_ois_matches_statsmodels_power_solver(d):
    """Independent reference: statsmodels' normal-approximation two-sample power solver
    (NormalIndPower, equal arms) gives the n per arm; the OIS is twice its ceiling."""
    from statsmodels.stats.power import NormalIndPower

    per_arm = NormalIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1.0)
    assert optimal_information_size(d) == 2 * int(np.ceil(per_arm))


def test_ois_worked_values():
    # n per arm = 2 (1.959964 + 0.841621)^2 / d^2 = 15.698 / d^2
    assert optimal_information_size(0.5) == 126  # 62.8 -> 63 per arm
    assert optimal_information_size(1.0) == 32  # 15.7 -> 16 per arm
    assert optimal_information_size(0.5, power=0.9) == 2 * 85  # 21.015 x 4 = 84.06 -> 85
    assert optimal_information_size(-0.5) == 126  # the sign of the important effect does not matter


# ---------------------------------------------------------------- risk of bias
def _rob(low: int, high: int, unclear: int):
    values = ["low"] * low + ["high"] * high + ["unclear"] * unclear
    items = {c: list(values) for c in rules.KEY_ROB_ITEMS}
    return items, [1.0] * len(values)


def test_risk_of_bias_boundaries():
    assert rules.risk_of_bias(*_rob(5, 0, 5))[0] == NS  # exactly half the weight low: most information
    assert rules.risk_of_bias(*_rob(4, 0, 6))[0] == S
    assert rules.risk_of_bias(*_rob(0, 5, 5))[0] == VS  # exactly half at high risk
    assert rules.risk_of_bias(*_rob(0, 4, 6))[0] == S


def test_risk_of_bias_with_item_columns_but_no_judgement_says_none_were_entered():
    """An imported table has the SYRCLE columns but nothing in them: not "0% at low risk"."""
    empty = {c: [None, float("nan")] for c in rules.KEY_ROB_ITEMS}
    assert rules.risk_of_bias(empty, [1.0, 1.0]) == (S, "no SYRCLE judgements were entered for these comparisons")
    empty["rob_blinding_assessor"] = ["low", None]  # one item entered: judged on it
    assert "50% of the weight from comparisons at low risk on blinding" in rules.risk_of_bias(empty, [1.0, 1.0])[1]


def test_risk_of_bias_uses_weights_and_names_the_weak_item():
    items = {c: ["low", "unclear"] for c in rules.KEY_ROB_ITEMS}
    items["rob_blinding_assessor"] = ["low", "high"]
    judgement, reason = rules.risk_of_bias(items, [3.0, 1.0])  # 75% of the weight low
    assert judgement == NS
    assert "75% of the weight" in reason and "25% at high risk" in reason
    assert rules.risk_of_bias(items, [1.0, 3.0])[0] == VS  # 75% of the weight high on one item
    assert rules.risk_of_bias(items, [1.0001, 1.0])[0] == NS
    items["rob_blinding_caregivers"] = ["unclear", "unclear"]  # now neither is low on every item
    assert rules.risk_of_bias(items, [1.0001, 1.0])[0] == S


def test_risk_of_bias_without_judgements_is_serious_with_a_reason():
    judgement, reason = rules.risk_of_bias({}, [1.0, 1.0])
    assert judgement == S and "no SYRCLE judgements" in reason
    items = {c: ["not judged"] * 2 for c in rules.KEY_ROB_ITEMS}
    assert rules.risk_of_bias(items, [1.0, 1.0])[0] == S


# ---------------------------------------------------------------- indirectness
def test_indirectness_defaults_to_serious_and_names_species_models_and_doses():
    judgement, reason = rules.indirectness(
        ["rat", "mouse", "rat"], ["focal_cerebral_ischemia"], [16.0, np.nan, 64.0], "µg protein/kg"
    )
    assert judgement == S
    assert "mouse, rat" in reason and "focal cerebral ischaemia" in reason and "Hooijmans" in reason
    assert "median 40 µg protein/kg" in reason and "2 of 3 comparisons" in reason
    assert "no dose could be converted" in rules.indirectness(["rat"], ["x"], [np.nan])[1]


# ---------------------------------------------------------------- inconsistency
def test_inconsistency_boundaries():
    # I^2 just below / at 50% with the prediction interval on one side of the null
    assert rules.inconsistency(10, 49.9, 1.0, 0.2, 1.8)[0] == NS
    assert rules.inconsistency(10, 50.0, 1.0, 0.2, 1.8)[0] == S
    # a prediction interval that crosses the null is serious whatever I^2
    assert rules.inconsistency(10, 10.0, 1.0, -0.01, 2.0)[0] == S
    assert rules.inconsistency(10, 10.0, 1.0, 0.0, 2.0)[0] == NS  # touching 0 is not crossing it
    # very serious: I^2 >= 75% and new studies may show an important effect the other way
    assert rules.inconsistency(10, 75.0, 1.0, -0.5, 2.5, important=0.5)[0] == VS
    assert rules.inconsistency(10, 75.0, 1.0, -0.49, 2.5, important=0.5)[0] == S
    assert rules.inconsistency(10, 74.9, 1.0, -0.5, 2.5, important=0.5)[0] == S
    assert rules.inconsistency(10, 90.0, 1.0, -0.5, 2.5, important=None)[0] == S
    # a negative estimate: the other way is above the null
    assert rules.inconsistency(10, 80.0, -1.0, -2.5, 0.5, important=0.5)[0] == VS


def test_inconsistency_small_k_and_scale_model():
    judgement, reason = rules.inconsistency(2, 33.0, 1.0, np.nan, np.nan)
    assert judgement == S and reason.startswith("k = 2:") and "I² = 33% on 1 df" in reason
    assert rules.inconsistency(1, np.nan, 1.0, np.nan, np.nan)[1].startswith("k = 1: consistency cannot")
    _, reason = rules.inconsistency(10, 20.0, 1.0, 0.1, 2.0, scale_taus={"UC": 0.6, "SEC": 0.2})
    assert "τ by level of the location-scale model: UC 0.60; SEC 0.20" in reason


# ---------------------------------------------------------------- imprecision
def test_imprecision_boundaries_against_the_ois():
    ois = 126
    assert rules.imprecision(20, 126, 0.6, 1.4, 0.5, ois)[0] == NS  # reached exactly
    assert rules.imprecision(20, 125, 0.6, 1.4, 0.5, ois)[0] == S  # one animal short
    assert rules.imprecision(20, 63, 0.6, 1.4, 0.5, ois)[0] == S  # exactly half: not far below
    assert rules.imprecision(20, 62, 0.6, 1.4, 0.5, ois)[0] == VS  # below half the OIS


def test_imprecision_boundaries_of_the_interval():
    ois = 126
    assert rules.imprecision(20, 400, 0.0, 1.4, 0.5, ois)[0] == S  # includes the null (touches it)
    assert rules.imprecision(20, 400, 0.01, 1.4, 0.5, ois)[0] == S  # straddles the important effect 0.5
    assert rules.imprecision(20, 400, 0.5, 1.4, 0.5, ois)[0] == NS  # from the important effect up
    assert rules.imprecision(20, 400, -0.5, 0.5, 0.5, ois)[0] == VS  # important harm and benefit
    assert rules.imprecision(20, 400, -0.49, 0.5, 0.5, ois)[0] == S
    assert rules.imprecision(20, 100, -0.1, 1.4, 0.5, ois)[0] == VS  # two problems: null and OIS
    # no important effect: only the null and the OIS count
    assert rules.imprecision(20, 400, 0.01, 1.4, None, None)[0] == NS


def test_imprecision_small_data_reasons():
    judgement, reason = rules.imprecision(2, 24, -3.0, 5.2, 0.5, 126)
    assert judgement == VS and reason.startswith("k = 2, 24 animals") and "19% reached" in reason
    judgement, reason = rules.imprecision(1, 12, np.nan, np.nan, 0.5, 126)
    assert judgement == VS and "no confidence interval" in reason
    assert "no optimal information size" in rules.imprecision(5, 50, 1.0, 2.0, None, None)[1]


# ---------------------------------------------------------------- publication bias
def test_publication_bias_needs_ten_comparisons():
    judgement, reason = rules.publication_bias(9, egger_pvalue=0.9)
    assert judgement == S and reason.startswith("k = 9: fewer than 10")
    assert rules.publication_bias(10, egger_pvalue=0.9)[0] == NS
    assert rules.publication_bias(10)[0] == S  # nothing could be fitted: not assessable


def test_publication_bias_signal_thresholds():
    assert rules.publication_bias(20, egger_pvalue=0.10)[0] == NS  # p < 0.10 signals, 0.10 does not
    assert rules.publication_bias(20, egger_pvalue=0.0999)[0] == S
    assert rules.publication_bias(20, selection_pvalue=0.0999)[0] == S
    assert rules.publication_bias(20, bias_bf=3.0)[0] == NS
    assert rules.publication_bias(20, bias_bf=3.01)[0] == S
    main = (0.2, 1.0)
    # trim-and-fill signals only when it fills and its interval reaches the null the main one excludes
    assert rules.publication_bias(20, trimfill_k0=3, trimfill_ci=(-0.1, 0.8), main_ci=main)[0] == S
    assert rules.publication_bias(20, trimfill_k0=0, trimfill_ci=(-0.1, 0.8), main_ci=main)[0] == NS
    assert rules.publication_bias(20, trimfill_k0=3, trimfill_ci=(0.05, 0.8), main_ci=main)[0] == NS


def test_publication_bias_very_serious_needs_two_signals_and_an_adjusted_interval_at_the_null():
    two = dict(egger_pvalue=0.01, bias_bf=10.0, main_ci=(0.2, 1.0))
    assert rules.publication_bias(20, **two, bma_ci=(0.1, 0.9))[0] == S
    judgement, reason = rules.publication_bias(20, **two, bma_ci=(-0.1, 0.9))
    assert judgement == VS and "model-averaged interval includes no effect" in reason
    assert rules.publication_bias(20, egger_pvalue=0.01, bma_ci=(-0.1, 0.9), main_ci=(0.2, 1.0))[0] == S


# ---------------------------------------------------------------- overall, overrides, outputs
def _evidence(name="infarct size", **changes):
    values = dict(
        outcome=name, measure="SMD", k=12, n_studies=10, n_animals=300, estimate=1.0, ci_low=0.6,
        ci_high=1.4, pi_low=0.1, pi_high=1.9, i2=30.0,
        rob={c: ["low"] * 12 for c in rules.KEY_ROB_ITEMS}, weights=[1.0] * 12,
        species=["rat"], disease_models=["myocardial_infarction"], egger_pvalue=0.5,
    )  # fmt: skip
    values.update(changes)
    return OutcomeEvidence(**values)


def test_certainty_starts_high_and_goes_down_per_level():
    sof = summary_of_findings([_evidence()])
    (row,) = sof.outcomes
    assert [d.judgement for d in row.domains] == [NS, S, NS, NS, NS]  # only indirectness
    assert row.certainty == "moderate"
    sof = summary_of_findings([_evidence()], overrides=[Override("*", "indirectness", "not serious", "r")])
    assert sof.outcomes[0].certainty == "high"
    worst = [Override("*", d, "very serious", "r") for d in ("risk_of_bias", "imprecision")]
    assert summary_of_findings([_evidence()], overrides=worst).outcomes[0].certainty == LEVELS[-1]


def test_overrides_for_the_outcome_win_and_are_marked():
    overrides = [
        Override("*", "indirectness", "very serious", "no human dose range studied"),
        Override("infarct size", "indirectness", "not serious", "  mechanism conserved in humans  "),
    ]
    sof = summary_of_findings([_evidence(), _evidence("infarct volume")], overrides=overrides)
    size, volume = sof.outcomes
    d = size.domain("indirectness")
    assert (d.judgement, d.reason, d.overridden, d.suggested) == (
        NS,
        "mechanism conserved in humans",
        True,
        S,
    )
    assert volume.domain("indirectness").judgement == VS
    assert not size.domain("imprecision").overridden
    frame = sof.to_frame()
    row = frame[(frame.outcome == "infarct size") & (frame.domain == "indirectness")].iloc[0]
    assert bool(row.overridden) and row.judgement == NS and row.suggested == S
    assert "Hooijmans" in row.suggested_reason and row.starting_certainty == "high"
    rows, notes = table_rows(sof)
    assert rows.loc[0, "Indirectness"] == "not serious* [a]"  # not rated down, but the reason is shown
    assert any("Reviewer's judgement; evmeta suggested serious" in text for *_, text in notes)
    assert rows.loc[1, "Indirectness"].startswith("very serious (−2)* [")


def test_settings_choose_the_important_effect_and_ois():
    settings = CertaintySettings()
    assert settings.important("SMD") == 0.5 and settings.ois("SMD") == 126
    assert settings.important("MD") is None and settings.ois("MD") == 126  # OIS in SD units, 0.5
    assert settings.important("ROM") == pytest.approx(np.log(1.25))
    assert CertaintySettings(important_effect=1.0).ois("SMD") == 32
    assert CertaintySettings(important_effect=1.0, ois_smd=0.5).ois("SMD") == 126


def test_a_single_comparison_and_k_2_give_judgements_not_crashes():
    one = _evidence(k=1, n_studies=1, n_animals=12, ci_low=np.nan, ci_high=np.nan, estimate=np.nan,
                    pi_low=np.nan, pi_high=np.nan, i2=np.nan, weights=[1.0],
                    rob={c: ["unclear"] for c in rules.KEY_ROB_ITEMS})  # fmt: skip
    two = _evidence(k=2, n_studies=2, n_animals=24, ci_low=-3.0, ci_high=5.2, pi_low=np.nan, pi_high=np.nan)
    sof = summary_of_findings([one, two])
    for row in sof.outcomes:
        assert row.certainty == "very low"
        assert all(d.reason for d in row.domains)
    assert sof.outcomes[0].effect_text() == "not estimable"
    assert sof.outcomes[1].domain("imprecision").reason.startswith("k = 2, 24 animals")


def test_word_document_reads_back(tmp_path):
    import docx

    from evmeta.report.certainty.word import write_summary_docx

    overrides = [Override("infarct size", "inconsistency", "very serious", "opposite effects in mice")]
    sof = summary_of_findings([_evidence(), _evidence("infarct volume", ci_low=-0.2)], overrides=overrides)
    path = write_summary_docx(sof, tmp_path / "sof.docx", title="A title", question="Does it work?")
    document = docx.Document(path)
    (table,) = document.tables
    cells = [[c.text for c in row.cells] for row in table.rows]
    assert cells[0] == [
        "Outcome", "Comparisons (studies)", "Animals", "Effect", "Risk of bias", "Indirectness",
        "Inconsistency", "Imprecision", "Publication bias", "Certainty",
    ]  # fmt: skip
    assert cells[1][0] == "infarct size" and cells[1][3] == "SMD 1.00 (95% CI 0.60 to 1.40)"
    assert cells[1][6].startswith("very serious (−2)*") and cells[1][-1] == "very low"
    cell = table.rows[1].cells[6].paragraphs[0]
    letter = cell.runs[-1]
    assert letter.font.superscript and cell.text == f"very serious (−2)*{letter.text}"
    assert cells[2][7].startswith("serious (−1)")  # the interval of infarct volume includes no effect
    assert table.rows[0]._tr.trPr.xml.count("tblHeader") == 1  # header repeated on every page
    text = "\n".join(p.text for p in document.paragraphs)
    assert f"{letter.text} infarct size: Inconsistency, very serious: opposite effects in mice." in text
    assert "evmeta suggested not serious" in text
    assert "Question: Does it work?" in text and "Hooijmans et al. 2018" in text
    assert document.sections[0].page_width > document.sections[0].page_height  # landscape


def test_reasons_name_the_interval_level_of_the_fit():
    assert "90% CI 0.10 to 0.90" in rules.imprecision(5, 50, 0.1, 0.9, 0.5, None, level=0.9)[1]
    reason = rules.inconsistency(5, 40.0, 0.5, -0.2, 1.2, 0.5, level=0.9)[1]
    assert "90% prediction interval" in reason
