"""Limits that fit preclinical work (issue 25 item 3): publication years from 1900 and time
points before time zero (negative), with "last" still the latest."""

from __future__ import annotations

import evmeta as em
from evmeta.schema.columns import TIMEPOINT_LIMIT, YEAR_MIN, column_map


def _book(tmp_path, *, year: int, times: list[float | None], unit: str = "days"):
    """One study, one experiment, one EV arm and its control measured at ``times``."""
    arms = [
        {"arm_id": "S1-E-C", "experiment_id": "S1-E", "role": "vehicle_control"},
        {"arm_id": "S1-E-T", "experiment_id": "S1-E", "role": "ev", "prep_id": "S1-P"},
    ]
    outcomes = []
    for i, time in enumerate(times):
        for arm, mean in (("C", 40.0), ("T", 25.0 + i)):
            outcomes.append(
                {
                    "outcome_id": f"S1-O{arm}{i}",
                    "experiment_id": "S1-E",
                    "arm_id": f"S1-E-{arm}",
                    "outcome": "body weight",
                    "higher_is_better": "yes",
                    "n": 8,
                    "mean": mean,
                    "sd": 5.0,
                    "timepoint": time,
                    "timepoint_unit": unit,
                }
            )
    folder = tmp_path / f"book{year}"
    em.write_template(
        folder,
        csv_dir=True,
        data={
            "studies": [{"study_id": "S1", "first_author": "Old", "year": year}],
            "preparations": [
                {
                    "prep_id": "S1-P",
                    "study_id": "S1",
                    "msc_tissue_source": "bone marrow",
                    "isolation_method": "UC",
                }
            ],
            "experiments": [
                {"experiment_id": "S1-E", "study_id": "S1", "species": "rat", "disease_model": "other"}
            ],
            "arms": arms,
            "outcomes": outcomes,
        },
    )
    return folder


def _problems(folder) -> list[str]:
    _, problems = em.validate_extraction(folder)
    return [str(p) for p in problems if p.severity == "error"]


def test_years_from_1900_are_accepted_and_earlier_ones_refused(tmp_path):
    assert YEAR_MIN == 1900 and column_map("studies")["year"].minimum == 1900
    assert _problems(_book(tmp_path, year=1936, times=[7.0])) == []
    refused = _problems(_book(tmp_path, year=1899, times=[7.0]))
    assert any("year: must be >= 1900, got 1899" in p for p in refused), refused


def test_negative_time_points_are_read_and_last_is_the_latest(tmp_path):
    """Prenatal (-5 d) and pre-treatment (-1 d) measurements validate; "last" picks the
    latest (+3 d), "first" the earliest (-5 d), a number the closest one."""
    folder = _book(tmp_path, year=2020, times=[-5.0, -1.0, 3.0])
    assert _problems(folder) == []
    book = em.read_extraction(folder)
    every = em.build_comparisons(book, timepoint="all").table
    assert sorted(every["timepoint"]) == [-5.0, -1.0, 3.0]
    assert every.set_index("timepoint").loc[-5.0, "timepoint_label"] == "-5 d"
    assert list(em.build_comparisons(book, timepoint="last").table["timepoint"]) == [3.0]
    assert list(em.build_comparisons(book, timepoint="first").table["timepoint"]) == [-5.0]
    assert list(em.build_comparisons(book, timepoint=-2.0).table["timepoint"]) == [-1.0]


def test_only_negative_time_points_still_give_the_latest(tmp_path):
    """Every time point before time zero, in weeks: "last" is the one closest to zero."""
    folder = _book(tmp_path, year=2020, times=[-3.0, -1.0], unit="weeks")
    book = em.read_extraction(folder)
    assert list(em.build_comparisons(book, timepoint="last").table["timepoint"]) == [-7.0]


def test_a_missing_time_point_is_not_confused_with_a_negative_one(tmp_path):
    """A group whose rows give no time point keeps one comparison (no time), never paired
    with a row at -1 day (a finite stand-in for "no time point" would have been)."""
    folder = _book(tmp_path, year=2020, times=[None])
    table = em.build_comparisons(em.read_extraction(folder), timepoint="all").table
    assert len(table) == 1 and table["timepoint"].isna().all()


def test_time_points_beyond_the_limit_are_refused(tmp_path):
    refused = _problems(_book(tmp_path, year=2020, times=[-(TIMEPOINT_LIMIT + 1)]))
    assert any(f"timepoint: must be >= {-TIMEPOINT_LIMIT}" in p for p in refused), refused


def test_import_wide_reads_a_year_before_1950_from_the_author(tmp_path):
    """A 1936 study's year is read from 'Selye (1936)', not replaced by the placeholder."""
    from evmeta.schema.wide_import import import_wide

    table = tmp_path / "old.csv"
    table.write_text(
        "id,author,n_t,m_t,sd_t,n_c,m_c,sd_c\n"
        '1,"Selye, H (1936)",6,10,2,6,14,2\n'
        '2,"Smith, A (2012)",8,11,2,8,13,2\n',
        encoding="utf-8",
    )
    mapping = tmp_path / "old.toml"
    mapping.write_text(
        '[columns]\nstudy_id = "id"\nfirst_author = "author"\ntreat_n = "n_t"\ntreat_mean = "m_t"\n'
        'treat_sd = "sd_t"\ncontrol_n = "n_c"\ncontrol_mean = "m_c"\ncontrol_sd = "sd_c"\n'
        '[constants]\noutcome = "body weight"\npreparation_kind = "non_ev"\n',
        encoding="utf-8",
    )
    import_wide(table, mapping, tmp_path / "old.xlsx")
    book = em.read_extraction(tmp_path / "old.xlsx")
    assert dict(zip(book.studies["study_id"].astype(str), book.studies["year"], strict=True)) == {
        "1": 1936,
        "2": 2012,
    }
    assert set(book.preparations["preparation_kind"]) == {"non_ev"}
