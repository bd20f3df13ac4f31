"""What a project holds and what happened to it: the state a report names, and the log.

``project_state`` gives the database revision and the counts of every table (the provenance
of a what-changed report names it); ``log_entries`` lists every search import, screening
batch, extraction version and analysis run in the order they were written (``evmeta log``).
"""

from __future__ import annotations

from typing import Any

from evmeta.project.database import revision, safe_url
from evmeta.project.project import Project


def project_state(project: Project) -> dict[str, Any]:
    """Project id, database (no password), migration revision and table counts."""
    from sqlalchemy import func, select

    from evmeta.project import models as m

    counted = {
        "search_exports": m.SearchExport,
        "records": m.Record,
        "unique_works": m.Cluster,
        "screening_batches": m.ScreeningBatch,
        "screening_decisions": m.ScreeningDecision,
        "extraction_versions": m.ExtractionVersion,
        "cell_changes": m.CellChange,
        "analysis_specs": m.AnalysisSpecRow,
        "analysis_runs": m.AnalysisRunRow,
    }
    with project.engine.connect() as connection:
        counts = {
            name: connection.execute(select(func.count()).select_from(model)).scalar_one()
            for name, model in counted.items()
        }
    return {
        "project_uuid": project.project_uuid,
        "database": safe_url(project.url),
        "revision": revision(project.engine),
        "counts": counts,
    }


def _searches(connection) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from evmeta.project.models import SearchExport as S

    rows = connection.execute(select(S).order_by(S.id)).scalars()
    return [
        {
            "when": r.imported_at, "kind": "search", "id": r.id, "who": r.imported_by,
            "what": f"{r.file_name} ({r.database}, searched {r.searched_on:%Y-%m-%d}): {r.n_records} records, "
            f"{r.n_new_unique} new unique" + (f"; screening sheet {r.screening_sheet}" if r.screening_sheet else ""),
        }
        for r in rows
    ]  # fmt: skip


def _batches(connection) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from evmeta.project.models import ScreeningBatch as B

    return [
        {"when": r.imported_at, "kind": "screening", "id": r.id, "who": r.imported_by,
         "what": f"{r.file_name}: {r.n_decisions} decision(s) recorded"}
        for r in connection.execute(select(B).order_by(B.id)).scalars()
    ]  # fmt: skip


def _versions(connection) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from evmeta.project.models import ExtractionVersion as V

    return [
        {"when": r.imported_at, "kind": "extraction", "id": r.id, "who": r.imported_by,
         "what": f"version {r.version} from {r.file_name} ({r.stored_path}): {r.n_studies} studies, "
         f"{r.n_cells_changed} cell(s) changed"}
        for r in connection.execute(select(V).order_by(V.id)).scalars()
    ]  # fmt: skip


def _runs(connection) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from evmeta.project.models import AnalysisRunRow as R
    from evmeta.project.models import AnalysisSpecRow as P
    from evmeta.project.models import ExtractionVersion as V

    query = select(R, P.name, V.version).join(P, R.spec_id == P.id).join(V, R.extraction_version_id == V.id)
    out = []
    for run, name, version in connection.execute(query.order_by(R.id)).all():
        where = f"; report {run.report_path}" if run.report_path else ""
        why = f": {run.message}" if run.message and run.status != "done" else ""
        out.append(
            {"when": run.started_at, "kind": "run", "id": run.id, "who": "",
             "what": f"{name} on extraction version {version}: {run.status}{why}{where}"}
        )  # fmt: skip
    return out


KIND_ORDER = {"search": 0, "screening": 1, "extraction": 2, "run": 3}


def log_entries(project: Project) -> list[dict[str, Any]]:
    """Every import, decision batch and run, oldest first (ties keep the workflow's order)."""
    from sqlalchemy.orm import Session

    with Session(project.engine) as session:
        entries = [*_searches(session), *_batches(session), *_versions(session), *_runs(session)]
    return sorted(entries, key=lambda e: (e["when"].replace(tzinfo=None), KIND_ORDER[e["kind"]], e["id"]))


__all__ = ["log_entries", "project_state"]
