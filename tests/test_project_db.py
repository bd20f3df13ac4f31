"""The review project's database: schema by migration, transactional writers, concurrent
reviewers, on SQLite and on PostgreSQL (a throwaway server, see tests/project_support.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from evmeta.project.database import head_revision, resolve_url, revision, safe_url
from evmeta.project.errors import ProjectError
from evmeta.project.project import PROJECT_FILE, init_project, open_project
from evmeta.project.screening import Decision, add_decisions
from evmeta.project.searches import import_searches
from tests.project_support import BUNDLED_EXPORTS, ROOT, PostgresCluster


@pytest.fixture(scope="module")
def postgres():
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> str | None:
    """None for the project's own SQLite file, else the URL of an empty PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()


def _count(project, model) -> int:
    from sqlalchemy import func, select

    with project.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def test_init_builds_the_schema_by_migration(tmp_path, database):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from evmeta.project.models import Base

    with init_project(tmp_path / "review", database=database) as project:
        assert revision(project.engine) == head_revision() == "0001_initial"
        names = set(inspect(project.engine).get_table_names())
        assert set(Base.metadata.tables) <= names and "alembic_version" in names
        with project.engine.connect() as connection:
            # The migration builds exactly the tables of evmeta/project/models.py.
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        dialect = project.engine.dialect.name
    assert dialect == ("sqlite" if database is None else "postgresql")
    for folder in ("searches", "screening", "extraction", "analyses", "reports"):
        assert (tmp_path / "review" / folder).is_dir()
    with open_project(tmp_path / "review", database=database) as again:
        assert again.project_uuid in (tmp_path / "review" / PROJECT_FILE).read_text()


def test_init_refuses_an_existing_project_and_open_refuses_another_database(tmp_path, database):
    init_project(tmp_path / "a", database=database).close()
    with pytest.raises(ProjectError, match="already holds a review project"):
        init_project(tmp_path / "a", database=database)
    if database is not None:  # the same server database cannot hold two projects
        with pytest.raises(ProjectError, match="already holds a review project"):
            init_project(tmp_path / "b", database=database)
    init_project(tmp_path / "c").close()
    with pytest.raises(ProjectError, match="belongs to another project"):
        open_project(tmp_path / "c", database=database or resolve_url(tmp_path / "a"))
    with pytest.raises(ProjectError, match="not a review project"):
        open_project(tmp_path / "nothing")


def test_url_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("EVMETA_DATABASE_URL", raising=False)
    assert resolve_url(tmp_path).endswith("/project.sqlite")
    monkeypatch.setenv("EVMETA_DATABASE_URL", "postgresql://ana:secret@db.example/review")
    assert resolve_url(tmp_path) == "postgresql+psycopg://ana:secret@db.example/review"
    assert safe_url(resolve_url(tmp_path)) == "postgresql+psycopg://ana:***@db.example/review"
    with pytest.raises(ProjectError, match="not supported"):
        resolve_url(tmp_path, "mysql://x/y")


def test_a_failed_writer_leaves_nothing(tmp_path, database):
    from evmeta.project.models import ScreeningBatch, ScreeningDecision

    with init_project(tmp_path / "review", database=database) as project:
        import_searches(project, BUNDLED_EXPORTS)
        good = [Decision(1, "title_abstract", "ana", "include")]
        add_decisions(project, good, file_name="a.xlsx", sha256="a" * 64)
        # record 999999 does not exist: the foreign key stops the batch, and the batch row
        # written before it in the same transaction is rolled back with it.
        bad = [
            Decision(2, "title_abstract", "ana", "exclude"),
            Decision(999999, "title_abstract", "ana", "include"),
        ]
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            add_decisions(project, bad, file_name="b.xlsx", sha256="b" * 64)
        assert _count(project, ScreeningBatch) == 1 and _count(project, ScreeningDecision) == 1


WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    from evmeta.project.project import open_project
    from evmeta.project.screening import Decision, add_decisions
    folder, url, reviewer, other, batches = sys.argv[1:6]
    url = None if url == "-" else url
    project = open_project(folder, database=url)
    (pathlib.Path(folder) / f"{reviewer}.ready").touch()
    deadline = time.time() + 60
    while not (pathlib.Path(folder) / f"{other}.ready").exists() and time.time() < deadline:
        time.sleep(0.002)  # both writers start together
    for batch in range(int(batches)):
        decisions = [Decision(rid, "title_abstract", reviewer, "include" if (rid + batch) % 2 else "exclude")
                     for rid in range(1, 11)]
        add_decisions(project, decisions, file_name=f"{reviewer}_{batch}.xlsx", sha256=f"{reviewer}{batch}")
    project.close()
    """
)


def test_two_reviewers_writing_at_once_lose_nothing(tmp_path, database):
    """Two processes write 8 batches of 10 decisions each on the same records at the same
    moment; every batch and every decision must be there afterwards."""
    from sqlalchemy import select

    from evmeta.project.models import ScreeningBatch, ScreeningDecision

    folder = tmp_path / "review"
    with init_project(folder, database=database) as project:
        import_searches(project, BUNDLED_EXPORTS)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), database or "-", name, other, "8"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("ana", "ben"), ("ben", "ana"))
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    with open_project(folder, database=database) as project:
        assert _count(project, ScreeningBatch) == 16
        # Each batch flips every decision, so none is "unchanged": 2 x 8 x 10 rows.
        assert _count(project, ScreeningDecision) == 160
        with project.engine.connect() as connection:
            rows = connection.execute(select(ScreeningDecision.reviewer, ScreeningDecision.batch_id)).all()
    assert {r for r, _ in rows} == {"ana", "ben"} and len({b for _, b in rows}) == 16


def test_search_update_dedupes_against_everything_held(tmp_path, database):
    """The same de-duplication on both databases: the second export brings 4 new works."""
    from evmeta.project.update import update_searches
    from tests.project_support import PROJECT_DATA

    with init_project(tmp_path / "review", database=database) as project:
        first = update_searches(project, BUNDLED_EXPORTS)
        assert first.update.n_new_unique == 94 and first.sheet.name == "screening_003.xlsx"
        second = update_searches(project, [PROJECT_DATA / "pubmed_update.ris"])
        kept = second.update.new_records[second.update.new_records["keep"]]
        assert sorted(kept["doi"]) == [f"10.9999/evmeta.update.00{i}" for i in (1, 2, 3, 4)]
        assert (second.update.duplicates_of_held, second.update.duplicates_within) == (4, 1)
        again = update_searches(project, [PROJECT_DATA / "pubmed_update.ris"])
        assert again.sheet is None and again.update.exports[0].already_held
        with pytest.raises(ProjectError, match="given twice"):
            update_searches(project, [PROJECT_DATA / "pubmed_update.ris", PROJECT_DATA / "pubmed_update.ris"])


def _hold_sqlite_lock(path, seconds: float):
    """Hold SQLite's write lock from a plain sqlite3 connection for ``seconds`` (in a thread)."""
    import sqlite3
    import threading

    locked = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(10)
    return thread


def test_a_locked_sqlite_database_is_retried_then_refused(tmp_path, monkeypatch):
    import evmeta.project.database as database
    from evmeta.project.models import ScreeningDecision

    folder = tmp_path / "review"
    with init_project(folder) as project:
        import_searches(project, BUNDLED_EXPORTS)
    # A busy timeout far shorter than the lock: the write fails with "database is locked"
    # and succeeds on a later attempt of the retry loop, once the lock is gone.
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.05)
    with open_project(folder) as project:
        holder = _hold_sqlite_lock(folder / "project.sqlite", 0.4)
        add_decisions(project, [Decision(1, "title_abstract", "ana", "include")], file_name="a", sha256="a")
        holder.join()
        assert _count(project, ScreeningDecision) == 1
        # A lock that outlasts every attempt: a sentence, nothing written.
        monkeypatch.setattr(database, "MAX_ATTEMPTS", 2)
        holder = _hold_sqlite_lock(folder / "project.sqlite", 1.5)
        with pytest.raises(ProjectError, match="stayed locked by another writer through 2 attempts"):
            add_decisions(
                project, [Decision(2, "title_abstract", "ana", "include")], file_name="b", sha256="b"
            )
        holder.join()
        assert _count(project, ScreeningDecision) == 1
