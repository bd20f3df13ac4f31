"""Connecting to a review project's database: the URL, the engine, the migrations and the
transaction every writer runs in.

SQLite (the default, ``<DIR>/project.sqlite``) runs in WAL mode with a busy timeout, and each
write transaction starts with ``BEGIN IMMEDIATE`` so that two writers queue instead of
failing half-way; PostgreSQL (``postgresql+psycopg://...``) needs neither. A transaction
that still meets a lock or a serialization failure is retried a bounded number of times
(:data:`MAX_ATTEMPTS`) and then refused with a sentence. The schema is created and upgraded
by the Alembic migrations shipped in ``evmeta/project/migrations``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from evmeta.project.errors import ProjectError

#: Environment variable naming the database of a project (overridden by ``--database``).
ENV_URL = "EVMETA_DATABASE_URL"
#: Seconds a SQLite writer waits for another writer's lock before the retry loop steps in.
BUSY_TIMEOUT_S = 30.0
#: Attempts of one transaction (locks, serialization failures) before it is refused.
MAX_ATTEMPTS = 8
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

T = TypeVar("T")


def default_url(folder: str | Path) -> str:
    """The embedded SQLite database of a project folder."""
    return f"sqlite:///{(Path(folder).resolve() / 'project.sqlite').as_posix()}"


def resolve_url(folder: str | Path, given: str | None = None) -> str:
    """``given`` (``--database``), else ``$EVMETA_DATABASE_URL``, else the folder's SQLite."""
    url = given or os.environ.get(ENV_URL) or default_url(folder)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql+psycopg2://")):
        raise ProjectError(
            f"database URL {safe_url(url)!r} is not supported; use sqlite:///PATH or "
            "postgresql://USER@HOST/DBNAME (via --database or EVMETA_DATABASE_URL)"
        )
    return url


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and the log)."""
    head, sep, tail = url.partition("://")
    if "@" in tail and ":" in tail.split("@", 1)[0]:
        user = tail.split("@", 1)[0].split(":", 1)[0]
        tail = f"{user}:***@{tail.split('@', 1)[1]}"
    return head + sep + tail


def _sqlite_hooks(engine: Any) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # evmeta issues BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Any:
    """An engine for ``url`` (SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE``)."""
    from sqlalchemy import create_engine

    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_hooks(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Any) -> str:
    """Create or upgrade the schema to the newest migration; return the revision."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return revision(engine)


def head_revision() -> str:
    """The newest migration shipped with this evmeta."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head() or ""


def revision(engine: Any) -> str:
    """The migration the database is at ("" for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() or ""


def _retryable(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        word in text
        for word in ("database is locked", "database is busy", "could not serialize", "deadlock detected")
    )


def run_transaction(engine: Any, work: Callable[[Any], T], *, what: str) -> T:
    """Run ``work(session)`` in one transaction: all of it is committed, or none of it.

    A lock or serialization failure rolls back and retries (at most :data:`MAX_ATTEMPTS`
    times, waiting 0.05, 0.1, 0.2, ... s); any other error rolls back and propagates.

    Raises
    ------
    ProjectError
        When the transaction still fails after the last attempt (``what`` names it).
    """
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm import Session

    last: Exception | None = None
    for attempt in range(MAX_ATTEMPTS):
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except DBAPIError as exc:
            if not _retryable(exc):
                raise
            last = exc
            time.sleep(min(2.0, 0.05 * 2**attempt))
    raise ProjectError(
        f"{what}: the database stayed locked by another writer through {MAX_ATTEMPTS} attempts "
        f"({last}); nothing was written, run the command again"
    )


@contextmanager
def connected(url: str) -> Iterator[Any]:
    """An engine for the duration of a block, disposed afterwards."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


__all__ = [
    "ENV_URL",
    "connected",
    "default_url",
    "head_revision",
    "make_engine",
    "resolve_url",
    "revision",
    "run_transaction",
    "safe_url",
    "upgrade",
]
