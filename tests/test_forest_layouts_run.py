"""``[figures] forest_layout = "revman"`` (with forest_rob, forest_dose) reaches the forest
figure of an ``evmeta run`` (issue 27 item 4): the five-study review of tests/data/small_review,
frequentist models only, SVG output read back for RevMan's columns, lines and dots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evmeta.cli import app

EXTRACTION = Path(__file__).parent / "data" / "small_review" / "extraction"
pytestmark = pytest.mark.filterwarnings("ignore:Constructing a Categorical with a dtype")


def _spec(tmp_path: Path, figures: str) -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f"""
[analysis]
name = "layouts"
extraction = "{EXTRACTION.as_posix()}"

[comparisons]
measure = "SMD"
outcomes = ["serum creatinine", "infarct volume", "infarct size"]
timepoint = "last"
shared_control = "split"

[frequentist]
subgroups = []

[bayesian]
enabled = false

[sensitivity]
leave_one_out = false
low_risk_of_bias = false
nmd_vs_smd = false

[figures]
formats = ["svg"]
forest_by = "none"
{figures}
""",
        encoding="utf-8",
    )
    return spec


def test_revman_layout_reaches_the_run_forest(tmp_path):
    spec = _spec(tmp_path, 'forest_layout = "revman"\nforest_rob = true\nforest_dose = true')
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["run", str(spec), "-o", str(out), "--quiet"], terminal_width=200)
    assert result.exit_code == 0, result.output
    svg = (out / "forest.svg").read_text(encoding="utf-8")
    assert "Study or Subgroup" in svg and "Favours MSC-EVs" in svg  # [analysis] intervention (default)
    assert re.search(r"Test for overall effect: [Zt] = \d+\.\d\d \(P [=&lt;]+ ?[\d.]+\)", svg)
    assert re.search(r"Heterogeneity: Tau", svg)
    # SYRCLE judgements of the five studies: one dot per judged item and comparison.
    assert len(re.findall(r'id="rob:rob_[a-z_]+:(?:low|high|unclear)"', svg)) >= 7
    assert "(A) Sequence generation (selection bias)" in svg
