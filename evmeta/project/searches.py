"""Search exports into a project: de-duplicated against every record the project holds.

``import_searches`` reads new exports (RIS, MEDLINE, CSV), skips a file the project already
holds (same SHA-256), and clusters the new records together with all held records by
:func:`evmeta.review.dedupe.deduplicate` (the same rules as ``evmeta dedupe``). A new record
that falls in a cluster of held records is a duplicate of work already screened; clusters
made of new records only are new works, whose record kept by dedupe goes to screening.
Held clusters are never re-shaped: their kept record stays the one reviewers screened. All of
it is written in one transaction, under a lock, so two imports never interleave.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta._paths import read_bytes_capped
from evmeta.project.errors import ProjectError
from evmeta.project.project import Project, current_user
from evmeta.review.dedupe import SearchRecord, deduplicate, read_search_export


@dataclass
class ExportSummary:
    """What one export brought: records, duplicates of held work, new unique works."""

    file_name: str
    database: str
    n_records: int
    n_new_unique: int = 0
    already_held: str = ""


@dataclass
class SearchUpdate:
    """Result of ``import_searches``: per export, totals, and the new kept records."""

    exports: list[ExportSummary]
    new_records: pd.DataFrame
    duplicates_of_held: int = 0
    duplicates_within: int = 0
    merged_held_clusters: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def n_new_unique(self) -> int:
        return int(self.new_records["keep"].sum()) if len(self.new_records) else 0


def _held_records(session: Any) -> tuple[list[Any], list[SearchRecord]]:
    from sqlalchemy import select

    from evmeta.project.models import Record, SearchExport

    rows = session.execute(
        select(Record, SearchExport.file_name).join(SearchExport).order_by(Record.id)
    ).all()
    records = [
        SearchRecord(
            title=r.title,
            authors=json.loads(r.authors),
            year=r.year,
            doi=r.doi,
            journal=r.journal,
            pages=r.pages,
            pmid=r.pmid,
            source=r.source_format,
            source_file=name,
            database=r.database,
        )
        for r, name in rows
    ]
    return [r for r, _ in rows], records


def _lock(session: Any) -> None:
    """Serialize search imports (SQLite: BEGIN IMMEDIATE already holds the write lock)."""
    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(2028)"))


def _read_exports(paths: list[Path]) -> list[tuple[Path, str, list[SearchRecord]]]:
    out, seen = [], set()
    for path in paths:
        digest = hashlib.sha256(read_bytes_capped(path, what="search export")).hexdigest()
        if digest in seen:
            raise ProjectError(f"{path.name} is given twice (same content); give each export once")
        seen.add(digest)
        records = read_search_export(path)
        out.append((path, digest, records))
    return out


def _store_copies(project: Project, exports: list[tuple[Path, str, list[SearchRecord]]]) -> dict[str, Path]:
    """Copy each export into ``searches/`` (named by its hash: idempotent, never overwritten)."""
    stored = {}
    for path, digest, _ in exports:
        target = project.path("searches", f"{digest[:12]}_{path.name}")
        if not target.exists():
            shutil.copyfile(path, target)
        stored[digest] = target
    return stored


def import_searches(
    project: Project, paths: Sequence[str | Path], *, searched_on: dt.date | None = None
) -> SearchUpdate:
    """Import search exports (one per database) searched on ``searched_on`` (default today).

    Returns
    -------
    SearchUpdate
        ``new_records`` lists every record of the new clusters (``record_id`` and
        ``cluster_id`` are the project's ids, ``keep`` marks the record to screen), in the
        columns of ``evmeta dedupe``'s CSV.

    Raises
    ------
    ProjectError, UnreadableInput
        A file given twice, or an export that cannot be read (nothing is written then).
    """
    exports = _read_exports([Path(p) for p in paths])
    stored = _store_copies(project, exports)
    searched_on = searched_on or dt.datetime.now(dt.UTC).date()

    def work(session: Any) -> SearchUpdate:
        _lock(session)
        return _import(session, exports, stored, searched_on)

    return project.transaction(work, what="importing search exports")


def _import(session, exports, stored, searched_on) -> SearchUpdate:
    from sqlalchemy import select

    from evmeta.project.models import SearchExport
    from evmeta.review.prisma import database_name

    held_digests = dict(session.execute(select(SearchExport.sha256, SearchExport.imported_at)).all())
    summaries, fresh = [], []
    for path, digest, records in exports:
        summary = ExportSummary(path.name, database_name(path, records), len(records))
        if digest in held_digests:
            summary.already_held = f"already imported on {held_digests[digest]:%Y-%m-%d}"
        else:
            fresh.append((path, digest, records, summary))
        summaries.append(summary)
    if not fresh:
        return SearchUpdate(summaries, _new_frame([]))
    held_rows, held = _held_records(session)
    new = [record for _, _, records, _ in fresh for record in records]
    result = deduplicate([*held, *new])
    search_rows = []
    for path, digest, records, summary in fresh:
        row = SearchExport(
            file_name=path.name, database=summary.database, searched_on=searched_on, sha256=digest,
            stored_path=str(stored[digest].name), imported_by=current_user(), n_records=len(records),
            n_new_unique=0,
        )  # fmt: skip
        session.add(row)
        search_rows += [(row, summary)] * len(records)
    session.flush()
    update = _assign(session, result.table, held_rows, new, search_rows)
    update.exports = summaries
    update.warnings = list(result.warnings)
    return update


_FRAME_COLUMNS = [
    "record_id", "cluster_id", "keep", "score", "doi", "title", "first_author", "year", "journal",
    "pmid", "source_format", "source_file",
]  # fmt: skip


def _new_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=_FRAME_COLUMNS)
    frame["year"] = frame["year"].astype("Int64")
    return frame


def _record_row(record: SearchRecord, position: int, search: Any, cluster_id: int, keep: bool, score: float):
    from evmeta.project.models import Record

    return Record(
        search_id=search.id, position=position, title=record.title or "", authors=json.dumps(record.authors),
        year=record.year, doi=record.doi or "", journal=record.journal or "", pages=record.pages or "",
        pmid=record.pmid or "", source_format=record.source, database=record.database or "",
        cluster_id=cluster_id, keep=keep, score=float(score),
    )  # fmt: skip


def _fresh_rows(fresh: pd.DataFrame) -> list[tuple[int, float, bool]]:
    """(record id, score, keep) of each row of a cluster's new records."""
    return list(
        zip(
            fresh["record_id"].astype(int).tolist(),
            fresh["score"].astype(float).tolist(),
            fresh["keep"].astype(bool).tolist(),
            strict=True,
        )
    )


def _assign(session, table: pd.DataFrame, held_rows: list, new: list, search_rows: list) -> SearchUpdate:
    """Place each new record in a held cluster (a duplicate) or in a new cluster (a new work)."""
    from evmeta.project.models import Cluster

    n_held = len(held_rows)
    update = SearchUpdate([], _new_frame([]))
    pending: list[tuple[int, int | Cluster, bool, float]] = []  # (new index, cluster, keep, score)
    for _, members in table.groupby("cluster_id", sort=True):
        positions = list(members["record_id"].astype(int) - 1)
        held = [p for p in positions if p < n_held]
        fresh = members[members["record_id"] > n_held]
        if held:
            targets = {held_rows[p].cluster_id for p in held}
            update.merged_held_clusters += int(len(targets) > 1 and len(fresh) > 0)
            target = held_rows[min(held)].cluster_id
            pending += [(i - 1 - n_held, target, False, score) for i, score, _ in _fresh_rows(fresh)]
            update.duplicates_of_held += len(fresh)
            continue
        first = int(fresh["record_id"].min()) - 1 - n_held
        cluster = Cluster(search_id=search_rows[first][0].id)
        session.add(cluster)
        pending += [(i - 1 - n_held, cluster, keep, score) for i, score, keep in _fresh_rows(fresh)]
        update.duplicates_within += len(fresh) - 1
    session.flush()
    rows = []
    first_of: dict[int, int] = {}  # export row -> index of its first record
    for i, (search, _) in enumerate(search_rows):
        first_of.setdefault(search.id, i)
    for index, placed, keep, score in sorted(pending, key=lambda item: item[0]):  # ids in file order
        search, _ = search_rows[index]
        cluster_id = placed if isinstance(placed, int) else placed.id
        position = index - first_of[search.id]
        rows.append((index, placed, _record_row(new[index], position + 1, search, cluster_id, keep, score)))
    session.add_all([row for _, _, row in rows])
    session.flush()
    update.new_records = _new_frame(_describe(rows, table, n_held, search_rows))
    return update


def _describe(rows: list, table: pd.DataFrame, n_held: int, search_rows: list) -> list[dict[str, Any]]:
    """Rows of the new clusters in dedupe's CSV columns; counts the new works per export."""
    from evmeta.project.models import Cluster

    by_position = table.set_index("record_id")
    out = []
    for index, cluster, row in rows:
        if not isinstance(cluster, Cluster):
            continue
        if row.keep:
            cluster.kept_record_id = row.id
            search, summary = search_rows[index]
            search.n_new_unique += 1
            summary.n_new_unique += 1
        found = by_position.loc[index + 1 + n_held]
        out.append(
            {
                "record_id": row.id, "cluster_id": cluster.id, "keep": row.keep, "score": row.score,
                "doi": row.doi, "title": row.title, "first_author": found["first_author"], "year": row.year,
                "journal": row.journal, "pmid": row.pmid, "source_format": row.source_format,
                "source_file": search_rows[index][0].file_name,
            }
        )  # fmt: skip
    return out


__all__ = ["ExportSummary", "SearchUpdate", "import_searches"]
