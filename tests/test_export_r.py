"""`evmeta export-r`: the R script reproduces evmeta's frequentist models with metafor and
clubSandwich (Rscript from Debian's packages; CI installs them, so there the test runs).

Tolerance 1e-6 (absolute, on estimates, SEs, interval bounds and p-values): both sides
optimize the REML likelihood to their own convergence tolerances (metafor's threshold
1e-8 on tau^2 steps), which moves the third decimal of nothing reported; 1e-6 is what the
issue asks and well above the ~2e-7 seen on the example.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from evmeta.analysis.export_r import export_r, r_term
from evmeta.cli import app
from evmeta.errors import PathError
from tests.conftest import ROOT

TOLERANCE = 1e-6
RSCRIPT = shutil.which("Rscript")
needs_r = pytest.mark.skipif(
    RSCRIPT is None and os.environ.get("CI") != "true", reason="Rscript with metafor is not installed"
)


def _r_packages_present() -> bool:
    code = "quit(status = !all(sapply(c('metafor', 'clubSandwich', 'jsonlite'), requireNamespace, quietly = TRUE)))"
    return subprocess.run([RSCRIPT, "-e", code], capture_output=True).returncode == 0


def _run_r(folder: Path) -> pd.DataFrame:
    assert RSCRIPT is not None, "Rscript is not installed (CI installs r-base-core and r-cran-metafor)"
    assert _r_packages_present(), "R lacks metafor, clubSandwich or jsonlite"
    done = subprocess.run(
        [RSCRIPT, str(folder / "evmeta_models.R")], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.DataFrame(json.loads((folder / "metafor_results.json").read_text(encoding="utf-8")))


def _compare(folder: Path) -> pd.DataFrame:
    ours = pd.read_csv(folder / "evmeta_results.csv")
    theirs = _run_r(folder)
    both = ours.merge(theirs, on=["model", "term"], suffixes=("_evmeta", "_r"), validate="one_to_one")
    assert len(both) == len(ours) == len(theirs)
    for column in ("estimate", "se", "ci_low", "ci_high", "p"):
        gap = (both[f"{column}_evmeta"] - both[f"{column}_r"]).abs().max()
        assert gap < TOLERANCE, f"{column} differs by {gap:.2e}"
    assert (both["k_evmeta"] == both["k_r"]).all()
    assert (both["test_evmeta"] == both["test_r"]).all()
    return both


def test_term_names_follow_metafor():
    assert r_term("intercept") == "intrcpt"
    assert r_term("isolation_method[T.TFF+SEC]") == "isolation_methodTFF+SEC"
    assert r_term("quality_score") == "quality_score"


def _example(tmp_path: Path) -> Path:
    for folder in ("extraction", "analyses"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("search"))
    return tmp_path / "analyses" / "example.toml"


@needs_r
def test_the_example_is_reproduced_in_r(tmp_path: Path):
    exported = export_r(_example(tmp_path), tmp_path / "r")
    assert {"random_effects", "meta_regression", "multilevel", "multilevel_regression"} <= set(
        exported.models
    )
    both = _compare(tmp_path / "r")
    assert "CR2" in set(both["test_r"]) and "knha" in set(both["test_r"])
    assert any(m.startswith("subgroup:") for m in both["model"])


@needs_r
def test_a_real_published_table_is_reproduced_in_r(tmp_path: Path):
    """Remote ischaemic conditioning in rodent stroke (tests/data/ric/PROVENANCE.md), imported
    with import-wide and analysed with a random-effects model, subgroups by species and a
    meta-regression on species."""
    from evmeta.schema.wide_import import import_wide

    book = tmp_path / "ric.xlsx"
    import_wide(
        ROOT / "tests/data/ric/ric_infarct_volume_wide.csv",
        ROOT / "extraction/maps/ric_infarct_volume.toml",
        book,
    )
    spec = tmp_path / "ric.toml"
    spec.write_text(
        '[analysis]\nname = "ric"\nextraction = "ric.xlsx"\n'
        '[comparisons]\nmeasure = "SMD"\n'
        '[frequentist]\nmethod = "REML"\ntest = "knha"\nsubgroups = ["species"]\n'
        'meta_regression = "~ species"\nmultilevel = ["study_id", "experiment_id"]\nrobust = true\n'
        "[bayesian]\nenabled = false\n",
        encoding="utf-8",
    )
    exported = export_r(spec, tmp_path / "r")
    assert "random_effects" in exported.models
    _compare(tmp_path / "r")


def test_export_refuses_to_overwrite_without_force(tmp_path: Path):
    spec = _example(tmp_path)
    export_r(spec, tmp_path / "r")
    with pytest.raises(PathError):
        export_r(spec, tmp_path / "r")
    result = CliRunner().invoke(app, ["export-r", str(spec), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--force" in result.output
    result = CliRunner().invoke(app, ["export-r", str(spec), "-o", str(tmp_path / "r"), "--force"])
    assert result.exit_code == 0, result.output
    assert "Rscript" in result.output
