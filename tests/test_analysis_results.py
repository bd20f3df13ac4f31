"""The typed contract between the stages and the report (issue 21 item 3): the fitted models
of a run are one frozen :class:`~evmeta.results.AnalysisModels` with a field per family, and
:func:`evmeta.run_analysis` returns a frozen :class:`~evmeta.analysis.pipeline.AnalysisRun`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest

import evmeta as em
from evmeta.analysis.pipeline import AnalysisRun, RunState
from evmeta.results import AnalysisModels

pytestmark = pytest.mark.fast
PACKAGE = Path(__file__).resolve().parent.parent / "evmeta"


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "yi": [0.9, 1.4, 0.3, 1.1, 0.6, 1.8],
            "vi": [0.10, 0.15, 0.08, 0.20, 0.12, 0.25],
            "isolation_method": ["UC", "UC", "SEC", "SEC", "UC", "SEC"],
        }
    )


def test_models_are_frozen_and_their_families_read_only():
    table = _table()
    main = em.meta_analysis(table)
    models = AnalysisModels(random_effects=main)
    with pytest.raises(dataclasses.FrozenInstanceError):
        models.random_effects = None  # type: ignore[misc]
    grown = models.adding("subgroups", "isolation_method", em.subgroup_analysis(table, "isolation_method"))
    assert not models.subgroups and list(grown.subgroups) == ["isolation_method"]
    with pytest.raises(TypeError):
        grown.subgroups["other"] = None  # type: ignore[index]
    with pytest.raises(TypeError):  # a misspelt family is an error, not a new key
        models.with_(random_efects=main)
    with pytest.raises(TypeError):
        models.adding("trim_and_fill", "x", main)


def test_labels_are_the_model_column_of_results_csv():
    table = _table()
    main = em.meta_analysis(table)
    models = (
        AnalysisModels(
            random_effects=main, meta_regression=em.meta_analysis(table, mods="~ isolation_method")
        )
        .adding("subgroups", "isolation_method", em.subgroup_analysis(table, "isolation_method"))
        .adding("egger", "sei", em.models.egger_test(main, "sei"))
    )
    assert [name for name, _ in models.labelled()] == [
        "random_effects",
        "subgroup:isolation_method",
        "meta_regression",
        "egger:sei",
    ]
    assert [name for name, _ in models.coefficient_models()] == ["random_effects", "meta_regression"]
    assert models.only("random_effects").meta_regression is None and models.main is main
    with pytest.raises(LookupError):
        _ = AnalysisModels().main


def test_the_returned_run_is_frozen(tmp_path):
    state = RunState(spec=None, output=tmp_path / "staging", comparisons=None, exclusions=pd.DataFrame())
    state.notes.append("a note")
    state.files.append(tmp_path / "staging" / "results.csv")
    state.tables = state.tables.with_(bias=pd.DataFrame())
    run = state.freeze(tmp_path / "report")
    assert isinstance(run, AnalysisRun) and run.notes == ("a note",)
    assert run.files == (tmp_path / "report" / "results.csv",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.notes = ()  # type: ignore[misc]
    assert run.tables.bias is not None and run.tables.sensitivity is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.tables.bias = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        run.tables.with_(no_such_table=pd.DataFrame())
    contrasts = run.tables.with_contrasts("isolation_method", pd.DataFrame()).bayes_contrasts
    with pytest.raises(TypeError):
        contrasts["other"] = pd.DataFrame()  # type: ignore[index]


def _lines_matching(pattern: str) -> list[str]:
    """Every line of evmeta/ matching ``pattern``, as ``module:line``."""
    found = re.compile(pattern)
    return [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if found.search(line)
    ]


def test_no_layer_reads_a_model_by_a_string_key():
    found = _lines_matching(r"""\brun\.models(\[|\.get\(|\.items\(\))""")
    assert not found, found


def test_no_layer_reads_a_table_by_a_string_key():
    """The derived tables are typed fields of :class:`evmeta.run_tables.RunTables`."""
    found = _lines_matching(r"""\.tables(\[|\.get\(|\.items\(\)|\.keys\(\))|\bin run\.tables\b(?!\.)""")
    assert not found, found
