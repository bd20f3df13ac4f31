"""Analysis specs a project refits, and the record of every refit (spec, inputs, results).

A spec is registered by its TOML text (``add_spec``; the same text twice is one spec, a new
text under the same name replaces the active one). ``start_run`` and ``finish_run`` bracket
a refit in two transactions, so a run that fails half-way is still logged with its message.
``results`` is the JSON summary the what-changed report compares between runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from evmeta.project.errors import ProjectError
from evmeta.project.project import Project


def add_spec(project: Project, path: str | Path) -> tuple[str, bool]:
    """Register the spec at ``path``; return its name and whether it was new."""
    from sqlalchemy import select, update

    from evmeta.project.models import AnalysisSpecRow

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        name = tomllib.loads(text)["analysis"]["name"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ProjectError(f"{path}: not an analysis spec with [analysis] name ({exc})") from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def work(session: Any) -> tuple[str, bool]:
        held = session.scalars(
            select(AnalysisSpecRow).where(AnalysisSpecRow.name == name, AnalysisSpecRow.sha256 == digest)
        ).first()
        if held is not None and held.active:
            return name, False
        session.execute(update(AnalysisSpecRow).where(AnalysisSpecRow.name == name).values(active=False))
        if held is not None:
            held.active = True
        else:
            session.add(AnalysisSpecRow(name=name, toml=text, sha256=digest, active=True))
        return name, True

    return project.transaction(work, what=f"registering the analysis spec {path.name}")


def active_specs(project: Project) -> list[Any]:
    """The specs refitted after an extraction import, by name."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from evmeta.project.models import AnalysisSpecRow

    with Session(project.engine, expire_on_commit=False) as session:
        return list(
            session.scalars(
                select(AnalysisSpecRow).where(AnalysisSpecRow.active).order_by(AnalysisSpecRow.name)
            )
        )


def start_run(project: Project, spec_id: int, version_id: int, inputs: dict[str, Any]) -> int:
    """Log the start of a refit; return the run id."""
    from evmeta.project.models import AnalysisRunRow

    def work(session: Any) -> int:
        row = AnalysisRunRow(
            spec_id=spec_id, extraction_version_id=version_id, status="running", inputs=json.dumps(inputs)
        )
        session.add(row)
        session.flush()
        return row.id

    return project.transaction(work, what="logging an analysis run")


def finish_run(
    project: Project,
    run_id: int,
    *,
    status: str,
    results: dict[str, Any] | None = None,
    report_path: str | None = None,
    changes_path: str | None = None,
    message: str | None = None,
) -> None:
    """Store the outcome of a refit (``status`` "done" or "failed")."""
    from evmeta.project.models import AnalysisRunRow

    def work(session: Any) -> None:
        row = session.get(AnalysisRunRow, run_id)
        row.status, row.message = status, message
        row.finished_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        row.results = json.dumps(results or {}, default=str)
        row.report_path, row.changes_path = report_path, changes_path

    project.transaction(work, what="logging an analysis run")


def previous_results(project: Project, spec_name: str, before_run: int) -> dict[str, Any] | None:
    """Results of the last successful run of ``spec_name`` before run ``before_run``."""
    from sqlalchemy import select

    from evmeta.project.models import AnalysisRunRow, AnalysisSpecRow

    query = (
        select(AnalysisRunRow.results)
        .join(AnalysisSpecRow)
        .where(
            AnalysisSpecRow.name == spec_name, AnalysisRunRow.status == "done", AnalysisRunRow.id < before_run
        )
        .order_by(AnalysisRunRow.id.desc())
    )
    with project.engine.connect() as connection:
        text = connection.execute(query).scalars().first()
    return None if text is None else json.loads(text)


__all__ = ["active_specs", "add_spec", "finish_run", "previous_results", "start_run"]
