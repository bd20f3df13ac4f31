"""Analysis specs: the example parses; unknown keys and bad values name the key and the choices."""

from __future__ import annotations

import pytest

import evmeta as em
from evmeta.analysis.spec import load_spec, parse_spec
from tests.conftest import ROOT


def test_example_spec_loads():
    spec = load_spec(ROOT / "analyses" / "example.toml")
    assert spec.extraction_path == (ROOT / "extraction" / "example.xlsx").resolve()
    assert spec.output_path == (ROOT / "reports" / "example").resolve()
    assert spec.moderators == {"isolation_method": "UC"}
    assert "svg" in spec.figures.formats


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"frequentist": {"methd": "REML"}},
            "unknown key 'frequentist.methd'; valid keys in [frequentist]: method, test",
        ),
        (
            {"comparisons": {"measure": "XYZ"}},
            "comparisons.measure: 'XYZ' is not allowed; valid choices: 'SMD'",
        ),
        ({"figurs": {}}, "unknown key 'figurs'; valid keys: analysis, comparisons"),
        ({"bayesian": {"draws": 10}}, "bayesian.draws"),
        ({"filters": {"min_quality_score": 2}}, "filters.min_quality_score"),
        (
            {"bayesian": {"method": "gibbs"}},
            "'gibbs' is not allowed; valid choices: 'auto', 'quadrature' or 'nuts'",
        ),
    ],
)
def test_bad_specs(data, message):
    with pytest.raises(em.SpecError, match=None) as info:
        parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, **data})
    assert message in str(info.value)


def test_missing_required_and_files(tmp_path):
    with pytest.raises(em.SpecError, match="missing required key 'analysis'"):
        parse_spec({})
    spec = tmp_path / "a.toml"
    spec.write_text('[analysis]\nname = "a"\nextraction = "nothere.xlsx"\n')
    with pytest.raises(em.SpecError, match="does not exist"):
        load_spec(spec)
    spec.write_text("not = [toml")
    with pytest.raises(em.SpecError, match="not valid TOML"):
        load_spec(spec)
