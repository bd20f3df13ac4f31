"""Review-project records: extraction versions and cell history, screening refusals, spec
TOML round trip, cumulative meta-analysis by search date at small k, output refusals."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib

import numpy as np
import pandas as pd
import pytest

from evmeta.analysis.living import cumulative_by_search_date, derived_spec, toml_text
from evmeta.errors import ExtractionError, ScreeningError
from evmeta.models.frequentist.meta import meta_analysis
from evmeta.project.errors import ProjectError
from evmeta.project.extraction import cell_history, cells_at, import_extraction
from evmeta.project.project import init_project
from evmeta.project.runs import active_specs, add_spec
from evmeta.project.screening import record_screening
from evmeta.project.searches import import_searches
from tests.conftest import EXAMPLE, edit, set_cell
from tests.project_support import BUNDLED_EXPORTS, PROJECT_DATA, SEARCH


def test_each_import_is_a_version_with_the_cells_it_changed(tmp_path, example_copy):
    from sqlalchemy.orm import Session

    with init_project(tmp_path / "review") as project:
        first = import_extraction(project, example_copy)
        assert (first.version, first.changed, first.removed) == (1, 0, 0) and first.added > 10_000
        book = edit(example_copy)
        set_cell(book, "studies", 2, "journal", "Stem Cells Transl Med")  # ZHANG2020, row 2
        set_cell(book, "studies", 3, "notes", None)
        book.save(example_copy)
        second = import_extraction(project, example_copy)
        assert second.version == 2 and second.path.name == "v002.xlsx"
        history = cell_history(project, "studies", "ZHANG2020", "journal")
        assert [h["version"] for h in history] == [1, 2]
        assert (
            history[1]["old_value"] == history[0]["new_value"]
            and history[1]["new_value"] == "Stem Cells Transl Med"
        )
        with Session(project.engine) as session:
            assert cells_at(session, 1)[("studies", "ZHANG2020", "journal")] == history[0]["new_value"]
            assert cells_at(session)[("studies", "ZHANG2020", "journal")] == "Stem Cells Transl Med"
        assert import_extraction(project, example_copy).already_imported.startswith(
            "already imported as version 2"
        )


def test_a_resaved_workbook_with_the_same_cells_is_a_version_with_no_changes(tmp_path, example_copy):
    with init_project(tmp_path / "review") as project:
        assert import_extraction(project, example_copy).version == 1
        edit(example_copy).save(example_copy)  # new bytes (timestamps), the same cell values
        second = import_extraction(project, example_copy)
        assert (second.version, second.changed, second.added, second.removed) == (2, 0, 0, 0)
        assert second.path.name == "v002.xlsx" and second.path.exists()
        assert [h["version"] for h in cell_history(project, "studies", "ZHANG2020", "journal")] == [1]


def test_an_invalid_workbook_is_refused_and_nothing_is_stored(tmp_path, example_copy):
    book = edit(example_copy)
    set_cell(book, "outcomes", 2, "sd", -2.1)
    book.save(example_copy)
    with init_project(tmp_path / "review") as project:
        with pytest.raises(ExtractionError) as info:
            import_extraction(project, example_copy)
        assert any(p.sheet == "outcomes" and p.row == 2 for p in info.value.problems)
        assert not list((tmp_path / "review" / "extraction").iterdir())


def test_screening_rows_must_be_kept_records_of_the_project(tmp_path):
    with init_project(tmp_path / "review") as project:
        with pytest.raises(ScreeningError) as info:  # no search imported yet: no record is known
            record_screening(project, SEARCH / "screening.xlsx")
        assert "is not a record of this project" in str(info.value.problems[0])
        import_searches(project, BUNDLED_EXPORTS)
        assert record_screening(project, SEARCH / "screening.xlsx").recorded == 609
        copy = tmp_path / "copy.xlsx"
        shutil.copy(SEARCH / "screening.xlsx", copy)
        book = edit(copy)
        book["screening"]["A2"].value = 96  # a duplicate removed by de-duplication
        book.save(copy)
        with pytest.raises(ScreeningError, match="duplicate record"):
            record_screening(project, copy)


def test_specs_are_registered_once_and_written_back_as_valid_toml(tmp_path):
    from evmeta.analysis.spec import load_spec

    with init_project(tmp_path / "review") as project:
        assert add_spec(project, PROJECT_DATA / "living.toml") == ("living", True)
        assert add_spec(project, PROJECT_DATA / "living.toml") == ("living", False)
        spec = active_specs(project)[0]
        import_extraction(project, EXAMPLE)
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evmeta.project.models import ExtractionVersion

        with Session(project.engine) as session:
            version = session.scalars(select(ExtractionVersion)).one()
        path, out = derived_spec(project, spec, version)
        loaded = load_spec(path)
        original = tomllib.loads(spec.toml)
        assert loaded.frequentist.subgroups == original["frequentist"]["subgroups"]
        assert loaded.extraction_path == tmp_path / "review" / "extraction" / "v001.xlsx"
        assert out == tmp_path / "review" / "reports" / "living" / "v001"
        with pytest.raises(Exception, match="already exists"):  # the derived spec is not replaced
            derived_spec(project, spec, version)
        out.mkdir(parents=True)
        (out / "report.html").write_text("earlier report")
        with pytest.raises(ProjectError, match="use --force"):
            derived_spec(project, spec, version)
        derived_spec(project, spec, version, force=True)


def test_toml_text_round_trips_nested_and_quoted_keys():
    data = {
        "analysis": {"name": "x", "title": 'say "hi" µ'},
        "sensitivity": {"alternative_priors": {"tight heterogeneity": {"tau": "halfnormal(0.5)"}}},
        "figures": {"formats": ["svg"], "width": 120.5, "robust": True},
    }
    assert tomllib.loads(toml_text(data)) == data


def test_cumulative_by_search_date_at_small_k():
    rng = np.random.default_rng(7)
    table = pd.DataFrame(
        {"study_id": ["a", "b", "c", "d"], "yi": rng.normal(0.5, 0.3, 4), "vi": [0.04, 0.05, 0.06, 0.05]}
    )
    d1, d2, d3 = dt.date(2024, 1, 1), dt.date(2025, 1, 1), dt.date(2026, 1, 1)
    dates = {"a": d1, "b": d2, "c": d2, "d": d3}
    out = cumulative_by_search_date(table, dates, method="REML", test="knha")
    assert list(out["k"]) == [1, 3, 4]
    assert out["estimate"].iloc[0] == table["yi"].iloc[0] and "nothing pooled" in out["note"].iloc[0]
    full = meta_analysis(table, method="REML", test="knha")
    three = meta_analysis(table.iloc[:3], method="REML", test="knha")
    # The same routine on the same rows: identical up to summation order.
    assert out["estimate"].iloc[1] == pytest.approx(three.estimate, rel=1e-12)
    assert out["pi_high"].iloc[2] == pytest.approx(full.pi_high, rel=1e-12)
    unmatched = cumulative_by_search_date(table, {"a": d1}, method="REML", test="knha")
    assert unmatched.attrs["unmatched"] == 3 and list(unmatched["k"]) == [1]
