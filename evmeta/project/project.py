"""A review project: a folder of workbooks and reports with a database behind it.

``init_project(DIR)`` creates the folder (``searches/``, ``screening/``, ``extraction/``,
``analyses/``, ``reports/``), the database (SQLite in ``DIR/project.sqlite`` by default, or
the PostgreSQL database named by ``--database`` / ``EVMETA_DATABASE_URL``), runs the
migrations and writes ``DIR/evmeta-project.toml`` (the project's id and, for a server
database, its URL without password). ``open_project(DIR)`` connects again and checks that
the database is this project's and at the newest migration.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evmeta.project.database import (
    ENV_URL,
    default_url,
    head_revision,
    make_engine,
    resolve_url,
    revision,
    run_transaction,
    safe_url,
    upgrade,
)
from evmeta.project.errors import ProjectError

PROJECT_FILE = "evmeta-project.toml"
FOLDERS = ("searches", "screening", "extraction", "analyses", "reports")


@dataclass
class Project:
    """An open review project: its folder, database URL and engine."""

    folder: Path
    url: str
    engine: Any
    project_uuid: str

    def path(self, *parts: str) -> Path:
        """A path inside the project folder."""
        return self.folder.joinpath(*parts)

    def transaction(self, work, *, what: str):
        """Run ``work(session)`` in one retried transaction (see ``run_transaction``)."""
        return run_transaction(self.engine, work, what=what)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def current_user() -> str:
    """Who is writing (the operating-system user), recorded with every import."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _write_project_file(folder: Path, project_uuid: str, url: str) -> None:
    stored = "" if url == default_url(folder) else safe_url(url)
    lines = [
        "# evmeta review project: do not edit; `evmeta log` shows what the project holds.",
        f'project_uuid = "{project_uuid}"',
        f'created = "{dt.datetime.now(dt.UTC).date().isoformat()}"',
    ]
    if stored:
        lines.append(
            f'database = "{stored}"  # the password is never stored: give it via EVMETA_DATABASE_URL'
        )
    (folder / PROJECT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def init_project(folder: str | Path, *, database: str | None = None, name: str | None = None) -> Project:
    """Create a review project in ``folder`` (see the module docstring).

    Raises
    ------
    ProjectError
        When ``folder`` already holds a project or a file, or the database already holds a
        project's tables.
    """
    from sqlalchemy import inspect

    from evmeta._version import __version__
    from evmeta.project.models import ProjectInfo

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ProjectError(f"{folder} is a file; `evmeta init` needs a folder")
    if (folder / PROJECT_FILE).exists():
        raise ProjectError(f"{folder} already holds a review project ({PROJECT_FILE}); use `evmeta update`")
    url = resolve_url(folder, database)
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        if "project_info" in inspect(engine).get_table_names():
            raise ProjectError(
                f"the database {safe_url(url)} already holds a review project; give an empty database"
            )
        upgrade(engine)
    except ProjectError:
        engine.dispose()
        raise
    except Exception as exc:
        engine.dispose()
        _refuse_connection(url, exc)
    project_uuid = str(uuid.uuid4())
    info = ProjectInfo(
        project_uuid=project_uuid, name=name or folder.resolve().name, evmeta_version=__version__
    )
    run_transaction(engine, lambda session: session.add(info), what="evmeta init")
    for sub in FOLDERS:
        (folder / sub).mkdir(exist_ok=True)
    _write_project_file(folder, project_uuid, url)
    return Project(folder.resolve(), url, engine, project_uuid)


def _refuse_connection(url: str, exc: Exception) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise ProjectError(f"cannot use the database {safe_url(url)}: {reason}") from None
    raise exc


def _stored_settings(folder: Path) -> dict[str, str]:
    path = folder / PROJECT_FILE
    if not path.is_file():
        raise ProjectError(
            f"{folder} is not a review project (no {PROJECT_FILE}); create one with `evmeta init`"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path} is damaged ({exc}); it was written by `evmeta init`") from None


def open_project(folder: str | Path, *, database: str | None = None) -> Project:
    """Open the review project in ``folder``, checking database identity and migration."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from evmeta.project.models import ProjectInfo

    folder = Path(folder)
    settings = _stored_settings(folder)
    url = resolve_url(folder, database or os.environ.get(ENV_URL) or settings.get("database"))
    engine = make_engine(url)
    try:
        at, head = revision(engine), head_revision()
        if at != head:
            if at == "":
                raise ProjectError(f"the database {safe_url(url)} holds no review project")
            upgrade(engine)  # an older project is brought up to this evmeta's schema
        with engine.connect() as connection:
            stored = connection.execute(select(ProjectInfo.project_uuid)).scalar_one_or_none()
    except SQLAlchemyError as exc:
        engine.dispose()
        _refuse_connection(url, exc)
    except ProjectError:
        engine.dispose()
        raise
    if stored != settings.get("project_uuid"):
        engine.dispose()
        raise ProjectError(
            f"the database {safe_url(url)} belongs to another project than {folder} "
            f"({PROJECT_FILE} names {settings.get('project_uuid')}); check --database or EVMETA_DATABASE_URL"
        )
    return Project(folder.resolve(), url, engine, stored)


__all__ = ["FOLDERS", "PROJECT_FILE", "Project", "current_user", "init_project", "open_project"]
