"""Analysis specs: the example parses; unknown keys and bad values name the key and the choices."""

from __future__ import annotations

import shutil

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
        (
            {"bayesian": {"priors": "flat"}},
            "bayesian.priors: 'flat' is not a named prior set; valid choices: 'default', 'preclinical' or a "
            "[bayesian.priors] table",
        ),
        ({"bayesian": {"priors": 3}}, "bayesian.priors: 3 is not a prior set; valid choices: 'default'"),
        (
            {"bayesian": {"priors": {"tau": 1}}},
            'bayesian.priors: priors are strings such as "normal(0, 1)"; got tau = 1',
        ),
    ],
)
def test_bad_specs(data, message):
    with pytest.raises(em.SpecError, match=None) as info:
        parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, **data})
    assert message in str(info.value)


def test_bayesian_priors_take_a_table_or_a_named_set():
    base = {"analysis": {"name": "x", "extraction": "e.xlsx"}}
    assert parse_spec(base).bayesian.priors == {}
    assert parse_spec({**base, "bayesian": {"priors": "preclinical"}}).bayesian.priors == "preclinical"
    table = {"tau": "halfnormal(1)", "intercept": "normal(0, 5)"}
    assert parse_spec({**base, "bayesian": {"priors": table}}).bayesian.priors == table


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


# --- issue 17: hostile specs are errors naming the key, before anything runs ------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bayesian": {"draws": 200_000_000, "chains": 16}}, "bayesian.draws"),
        ({"bayesian": {"draws": 100_000, "chains": 16}}, "draws x chains = 100000 x 16"),
        ({"bayesian": {"tune": 10**9}}, "bayesian.tune"),
        ({"bayesian": {"chains": 64}}, "bayesian.chains"),
        ({"bayesian": {"seed": -1}}, "bayesian.seed"),
        ({"figures": {"width": 1e6}}, "figures.width"),
        ({"figures": {"width": float("inf")}}, "figures.width"),
        ({"figures": {"forest_by": "isolation_methd"}}, "did you mean 'isolation_method'?"),
        ({"figures": {"forest_by": "Specie"}}, "did you mean 'species'?"),
    ],
)
def test_hostile_values_name_the_key(data, message):
    with pytest.raises(em.SpecError) as info:
        parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, **data})
    assert message in str(info.value)


@pytest.mark.parametrize("name", ["." * 2, ".", "." * 3, "." * 2 + "/x", "/etc", "a/b"])
def test_a_name_that_escapes_reports_is_an_error(name):
    with pytest.raises(em.SpecError, match=r"analysis\.name"):
        parse_spec({"analysis": {"name": name, "extraction": "e.xlsx"}})


def test_groupable_columns_are_accepted():
    for column in ["isolation_method", "disease_model", "species", "purity_class", None]:
        spec = parse_spec(
            {"analysis": {"name": "x", "extraction": "e.xlsx"}, "figures": {"forest_by": column}}
        )
        assert spec.figures.forest_by == column


def _spec_file(folder, body: str = "", *, name: str = "a"):
    (folder / "e.xlsx").write_bytes((ROOT / "extraction" / "example.xlsx").read_bytes())
    spec = folder / "analyses" / f"{name}.toml"
    spec.parent.mkdir(exist_ok=True)
    extraction = (folder / "e.xlsx").as_posix()
    spec.write_text(f'[analysis]\nname = "{name}"\nextraction = "{extraction}"\n{body}', encoding="utf-8")
    return spec


def test_output_that_is_an_existing_file_is_an_error(tmp_path):
    (tmp_path / "taken.txt").write_text("keep me")
    spec = _spec_file(tmp_path, f'output = "{(tmp_path / "taken.txt").as_posix()}"\n')
    with pytest.raises(em.SpecError, match=r"analysis.output: .*taken.txt is an existing file"):
        load_spec(spec)
    assert (tmp_path / "taken.txt").read_text() == "keep me"


def test_output_holding_the_spec_or_extraction_is_an_error(tmp_path):
    for output in ['"."', '"' + "." * 2 + '"']:
        spec = _spec_file(tmp_path, f"output = {output}\n")
        with pytest.raises(em.SpecError, match=r"analysis\.output: the report folder .* holds the"):
            load_spec(spec)


def test_latin1_byte_directory_and_fifo_specs_are_sentences(tmp_path):
    spec = _spec_file(tmp_path, 'title = "Müller"\n')
    spec.write_bytes(spec.read_text(encoding="utf-8").encode("latin-1"))
    with pytest.raises(em.SpecError, match="line 4: byte 0xfc is not UTF-8"):
        load_spec(spec)
    with pytest.raises(em.SpecError, match="is a folder; expected a regular file"):
        load_spec(tmp_path)
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(em.SpecError, match="not valid TOML"):
        load_spec(deep)


def test_run_cli_turns_spec_problems_into_exit_2(tmp_path):
    from typer.testing import CliRunner

    from evmeta.cli import app

    for target in [tmp_path, tmp_path / "missing.toml"]:
        result = CliRunner().invoke(app, ["run", str(target), "--quiet"])
        assert result.exit_code == 2 and result.output.startswith("error: "), result.output
    spec = _spec_file(tmp_path, "[bayesian]\ndraws = 200000000\nchains = 16\n")
    result = CliRunner().invoke(app, ["run", str(spec), "--quiet"])
    assert result.exit_code == 2 and "bayesian.draws" in result.output


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"bayesian": {"priors": {"tau": "halfnormal(inf)"}}},
            "bayesian.priors: tau = 'halfnormal(inf)': prior parameters of 'halfnormal(inf)' must be finite",
        ),
        (
            {"bayesian": {"priors": {"intercept": "gauss(0, 1)"}}},
            "intercept = 'gauss(0, 1)': unknown prior family",
        ),
        (
            {"bayesian": {"priors": {"tau": "halfnormal(-1)"}}},
            "tau = 'halfnormal(-1)': halfnormal parameter sigma",
        ),
        ({"bayesian": {"priors": {"intercept": "preclinical"}}}, "intercept = 'preclinical'"),
        (
            {"sensitivity": {"alternative_priors": {"wide": {"tau": "normal(0)"}}}},
            "sensitivity.alternative_priors: wide: tau = 'normal(0)': normal takes 2 parameter(s)",
        ),
    ],
)
def test_bad_priors_stop_at_the_spec(data, message):
    # Issue 17: `tau = "halfnormal(inf)"` let `evmeta run` exit 0 with "Bayesian model: not fitted".
    with pytest.raises(em.SpecError) as info:
        parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, **data})
    assert message in str(info.value)
    assert "valid forms: normal(mu, sigma)" in str(info.value) and "'preclinical' for tau" in str(info.value)


def test_good_priors_still_load():
    base = {"analysis": {"name": "x", "extraction": "e.xlsx"}}
    table = {"tau[study_id]": "preclinical", "coefficients": "student_t(3, 0, 2.5)", "nu": "exponential(0.1)"}
    assert parse_spec({**base, "bayesian": {"priors": table}}).bayesian.priors == table
    alternatives = {"tight": {"tau": "HalfNormal( 0.5 )"}, "pre": {"tau": "preclinical"}}
    spec = parse_spec({**base, "sensitivity": {"alternative_priors": alternatives}})
    assert spec.sensitivity.alternative_priors == alternatives


def test_run_refuses_a_bad_prior(tmp_path):
    from typer.testing import CliRunner

    from evmeta.cli import app

    spec = tmp_path / "a.toml"
    spec.write_text(
        f'[analysis]\nname = "a"\nextraction = "{ROOT / "extraction" / "example.xlsx"}"\n'
        f'output = "{tmp_path / "out"}"\n[bayesian.priors]\ntau = "halfnormal(inf)"\n'
    )
    result = CliRunner().invoke(app, ["run", str(spec)])
    assert result.exit_code == 2, result.output
    assert "bayesian.priors: tau = 'halfnormal(inf)'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_spec_with_a_byte_order_mark_and_crlf_is_read(tmp_path):
    """Issue 29: Notepad's UTF-8 with BOM and Windows line ends are ordinary spec files."""
    from evmeta.analysis.spec import load_spec
    from tests.conftest import EXAMPLE

    text = '[analysis]\r\nname = "bom"\r\nextraction = "book.xlsx"\r\n[comparisons]\r\nmeasure = "ROM"\r\n'
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    shutil.copy(EXAMPLE, tmp_path / "book.xlsx")
    spec = load_spec(path)
    assert spec.analysis.name == "bom" and spec.comparisons.measure == "ROM"


def test_forest_by_a_column_of_the_reviewers_own_is_checked_against_the_table():
    """A name far from every workbook column may be an imported moderator: the spec accepts
    it, and the run refuses it only when the comparisons table has no such column."""
    import pandas as pd

    from evmeta.analysis.figure_jobs import check_forest_by

    spec = parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, "figures": {"forest_by": "drug_clas"}})
    with pytest.raises(em.SpecError, match=r"figures.forest_by: 'drug_clas' .*did you mean 'drug_class'\?"):
        check_forest_by(spec, pd.DataFrame({"yi": [1.0], "drug_class": ["statin"]}))
    good = parse_spec({"analysis": {"name": "x", "extraction": "e.xlsx"}, "figures": {"forest_by": "drug_class"}})
    check_forest_by(good, pd.DataFrame({"yi": [1.0], "drug_class": ["statin"]}))
