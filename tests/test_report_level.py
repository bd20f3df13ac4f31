"""A run at ``[frequentist] level = 0.9`` says 90% wherever it shows a frequentist interval:
report tables, captions, sentences, figures, the multiverse page and the living review's
what-changed report (issue 21 item 5). Bayesian credible intervals keep their own level
(95%) and say so."""

from __future__ import annotations

import re

import pytest

import evmeta as em
from tests.conftest import ROOT

#: Phrases a 90% run must not print: a frequentist interval labelled 95%.
WRONG = ("95% CI", "95% PI", "95% confidence", "95% prediction", "95% pseudo-confidence", "with 95% interval")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("level90")
    text = (ROOT / "analyses" / "example.toml").read_text(encoding="utf-8")
    text = text.replace('test = "knha"', 'test = "knha"\nlevel = 0.9', 1)
    text = text.replace('formats = ["pdf", "svg", "png"]', 'formats = ["svg"]')
    text = text.replace('"../extraction/', f'"{(ROOT / "extraction").as_posix()}/')
    spec = folder / "level90.toml"
    spec.write_text(text, encoding="utf-8")
    return em.run_analysis(spec, output=folder / "out", quiet=True)


def _visible(path) -> str:
    """The text a reader sees: HTML without tags (SVG text elements included)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))


def test_every_model_is_fitted_at_the_level(run):
    models = run.models
    fits = [models.main, models.meta_regression, models.multilevel, models.multilevel_regression,
            models.location_scale, models.dose_response, *models.subgroups.values()]  # fmt: skip
    assert all(fit is not None and fit.level == pytest.approx(0.9) for fit in fits)
    evidence = run.tables.isolation_evidence
    assert evidence.attrs["fit"].level == pytest.approx(0.9)


def test_report_says_90_percent(run):
    text = _visible(run.output / "report.html")
    found = [phrase for phrase in WRONG if phrase in text]
    assert not found, found
    assert "90% CI low" in text and "90% PI high" in text
    assert "90% confidence interval" in text and "90% prediction interval" in text
    # The Bayesian model is not given the frequentist level: its intervals say 95% CrI.
    assert "95% CrI" in text


def test_figures_say_90_percent(run):
    for name, paths in run.figures.items():
        for path in (p for p in paths if p.suffix == ".svg"):
            text = _visible(path)
            found = [phrase for phrase in WRONG if phrase in text]
            assert not found, (name, found)
    funnel = _visible(next(p for p in run.figures["funnel"] if p.suffix == ".svg"))
    assert "90% pseudo-confidence region" in funnel
