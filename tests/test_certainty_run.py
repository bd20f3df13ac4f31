"""evmeta run writes the summary of findings: certainty.csv, summary_of_findings.docx and
the report section, with the reviewer's override of the spec in all three; on a small
review (k = 2 per outcome) every domain has a judgement and a reason."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

import evmeta as em
from tests.small_reviews import write_review

SPEC = """[analysis]
name = "small"
extraction = "review"
[bayesian]
enabled = false
[sensitivity]
leave_one_out = false
nmd_vs_smd = false
[figures]
formats = ["svg"]
[[certainty.override]]
outcome = "infarct volume"
domain = "indirectness"
judgement = "very serious"
reason = "only young male rats without comorbidity"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certainty")
    write_review(folder / "review")
    (folder / "spec.toml").write_text(SPEC, encoding="utf-8")
    return em.run_analysis(folder / "spec.toml", output=folder / "out", quiet=True)


def test_the_override_is_in_the_csv(run):
    frame = pd.read_csv(run.output / "certainty.csv")
    assert list(pd.unique(frame["outcome"])) == [
        "all outcomes",
        "serum creatinine",
        "infarct volume",
        "infarct size",
    ]
    row = frame[(frame.outcome == "infarct volume") & (frame.domain == "indirectness")].iloc[0]
    assert row.judgement == "very serious" and bool(row.overridden)
    assert row.reason == "only young male rats without comorbidity"
    assert row.suggested == "serious" and "Hooijmans" in row.suggested_reason
    assert frame["overridden"].sum() == 1


def test_the_override_is_in_the_word_document(run):
    import docx

    document = docx.Document(run.output / "summary_of_findings.docx")
    cells = {row.cells[0].text: [c.text for c in row.cells] for row in document.tables[0].rows[1:]}
    assert cells["infarct volume"][5].startswith("very serious (−2)*")
    assert cells["infarct size"][5].startswith("serious (−1)")
    letter = re.fullmatch(r"very serious \(−2\)\*(\w+)", cells["infarct volume"][5]).group(1)
    text = "\n".join(p.text for p in document.paragraphs)
    assert (
        f"{letter} infarct volume: Indirectness, very serious: only young male rats without comorbidity."
        in text
    )
    assert "Reviewer's judgement; evmeta suggested serious" in text


def test_the_override_is_in_the_report(run):
    page = html.unescape((run.output / "report.html").read_text(encoding="utf-8"))
    assert "Summary of findings with certainty (GRADE for animal studies)" in page
    assert "only young male rats without comorbidity" in page
    assert "infarct volume, indirectness: very serious (evmeta suggested serious)" in page
    section = page[page.index("Summary of findings with certainty") :]
    for heading in ("Outcome", "Effect", "Risk of bias", "Indirectness", "Inconsistency", "Imprecision",
                    "Publication bias", "Certainty"):  # fmt: skip
        assert f"<th>{heading}</th>" in section  # no column is folded into a "same on every row" note


def test_small_data_gives_every_domain_a_judgement_and_a_reason(run):
    frame = pd.read_csv(run.output / "certainty.csv")
    per_outcome = frame[frame.outcome != "all outcomes"]
    assert set(per_outcome["k"]) == {2}
    assert per_outcome["reason"].str.len().gt(10).all()
    imprecision = per_outcome[per_outcome.domain == "imprecision"]
    assert (imprecision["judgement"] == "very serious").all()
    assert imprecision["reason"].str.startswith("k = 2, ").all()
    inconsistency = per_outcome[per_outcome.domain == "inconsistency"]
    assert inconsistency["reason"].str.startswith("k = 2: consistency cannot be judged").all()
    assert set(frame["certainty"]) <= {"high", "moderate", "low", "very low"}
    assert "certainty.csv" in {p.name for p in run.files}


def test_an_override_for_an_outcome_the_analysis_lacks_is_refused(tmp_path):
    write_review(tmp_path / "review")
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace('outcome = "infarct volume"', 'outcome = "infarct volum"'), encoding="utf-8")
    with pytest.raises(
        em.SpecError, match=r"certainty.override\[0\].outcome: 'infarct volum' is not an outcome"
    ):
        em.run_analysis(spec, output=tmp_path / "out", quiet=True)
