"""Screening in a project: the workbook of new records out, reviewers' decisions in.

``write_new_records_sheet`` writes the records of an update as ``evmeta dedupe``'s CSV
(``screening/deduplicated_<n>.csv``) and the screening workbook of
:func:`evmeta.review.screening.write_screening_sheet` from it, so reviewers keep the
workbook they know. ``record_screening`` reads a filled workbook with
:func:`evmeta.review.screening.read_screening` (every problem named by sheet, row and
column), checks each record_id against the project, and stores one decision per reviewer,
record and stage in one transaction; a decision equal to the latest one held is not stored
again, and a workbook already recorded (same SHA-256) adds nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evmeta._paths import check_output, read_bytes_capped
from evmeta.errors import Problem
from evmeta.project.project import Project, current_user

#: Workbook columns -> (stage, reviewer slot); slot 0/1 are the two reviewers, None the consensus.
DECISION_COLUMNS = {
    "ta_reviewer_1": ("title_abstract", 0),
    "ta_reviewer_2": ("title_abstract", 1),
    "ta_decision": ("title_abstract", None),
    "ft_reviewer_1": ("full_text", 0),
    "ft_reviewer_2": ("full_text", 1),
    "ft_decision": ("full_text", None),
    "final_decision": ("final", None),
}
CONSENSUS = "consensus"


@dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one record at one stage."""

    record_id: int
    stage: str
    reviewer: str
    decision: str
    reason: str | None = None


@dataclass
class BatchResult:
    """What ``record_screening`` stored: the batch id, decisions new or changed, unchanged."""

    batch_id: int | None
    recorded: int
    unchanged: int
    already_recorded: str = ""


def write_new_records_sheet(
    project: Project, records: Any, number: int, *, force: bool = False
) -> tuple[Path, Path] | None:
    """Write ``screening/deduplicated_<n>.csv`` and ``screening/screening_<n>.xlsx`` (None
    when the update brought no new record)."""
    from evmeta.review.screening import write_screening_sheet
    from evmeta.sheets.export import write_csv

    if records.empty or not records["keep"].any():
        return None
    table = project.path("screening", f"deduplicated_{number:03d}.csv")
    sheet = project.path("screening", f"screening_{number:03d}.xlsx")
    for path in (table, sheet):
        check_output(path, force=force)
    write_csv(records, table)
    return table, write_screening_sheet(table, sheet)


def decisions_of(screening: Any, reviewers: tuple[str, str]) -> list[Decision]:
    """Every decision typed in a validated screening log (empty cells are no decision)."""
    import pandas as pd

    out = []
    for row in screening.table.to_dict("records"):
        for column, (stage, slot) in DECISION_COLUMNS.items():
            value = row.get(column)
            if value is None or (isinstance(value, float) and pd.isna(value)):
                continue
            reviewer = CONSENSUS if slot is None else reviewers[slot]
            reason = row.get("exclusion_reason") if column == "ft_decision" else None
            out.append(Decision(int(row["record_id"]), stage, reviewer, str(value), reason or None))
    return out


def _check_records(session: Any, screening: Any) -> None:
    from sqlalchemy import select

    from evmeta.project.models import Record
    from evmeta.review.screening import ScreeningError

    kept = dict(session.execute(select(Record.id, Record.keep)).all())
    problems = []
    for row in screening.table.to_dict("records"):
        rid = int(row["record_id"])
        if rid not in kept or not kept[rid]:
            why = "is a duplicate record (not screened)" if rid in kept else "is not a record of this project"
            problems.append(
                Problem(
                    "screening", int(row["_row"]), "record_id", rid, f"record_id {rid} {why}", "error", "A"
                )
            )
    if problems:
        raise ScreeningError(problems)


def add_decisions(
    project: Project, decisions: list[Decision], *, file_name: str, sha256: str, check: Any = None
) -> BatchResult:
    """Store ``decisions`` as one batch, in one transaction (the concurrency-safe writer)."""

    def work(session: Any) -> BatchResult:
        from sqlalchemy import select

        from evmeta.project.models import ScreeningBatch, ScreeningDecision

        if check is not None:
            check(session)
        latest: dict[tuple[int, str, str], tuple[str, str | None]] = {}
        query = (
            select(ScreeningDecision)
            .where(ScreeningDecision.record_id.in_({d.record_id for d in decisions}))
            .order_by(ScreeningDecision.id)
        )
        for held in session.scalars(query):
            latest[(held.record_id, held.stage, held.reviewer)] = (held.decision, held.reason)
        changed = [
            d for d in decisions if latest.get((d.record_id, d.stage, d.reviewer)) != (d.decision, d.reason)
        ]
        batch = ScreeningBatch(
            file_name=file_name, sha256=sha256, imported_by=current_user(), n_decisions=len(changed)
        )
        session.add(batch)
        session.flush()
        session.add_all(
            ScreeningDecision(batch_id=batch.id, record_id=d.record_id, stage=d.stage, reviewer=d.reviewer,
                              decision=d.decision, reason=d.reason)
            for d in changed
        )  # fmt: skip
        return BatchResult(batch.id, len(changed), len(decisions) - len(changed))

    return project.transaction(work, what=f"recording the screening decisions of {file_name}")


def record_screening(
    project: Project, path: str | Path, *, reviewers: tuple[str, str] = ("reviewer_1", "reviewer_2")
) -> BatchResult:
    """Read a filled screening workbook and store its decisions (see the module docstring).

    Raises
    ------
    ScreeningError
        Problems of the workbook, or record_ids the project does not hold as kept records.
    """
    from sqlalchemy import select

    from evmeta.project.models import ScreeningBatch
    from evmeta.review.screening import read_screening

    path = Path(path)
    digest = hashlib.sha256(read_bytes_capped(path, what="screening workbook")).hexdigest()
    with project.engine.connect() as connection:
        earlier = connection.execute(
            select(ScreeningBatch.id, ScreeningBatch.imported_at).where(ScreeningBatch.sha256 == digest)
        ).first()
    if earlier is not None:
        return BatchResult(
            None, 0, 0, f"already recorded as batch {earlier.id} on {earlier.imported_at:%Y-%m-%d}"
        )
    screening = read_screening(path)
    decisions = decisions_of(screening, reviewers)
    return add_decisions(
        project, decisions, file_name=path.name, sha256=digest, check=lambda s: _check_records(s, screening)
    )


__all__ = [
    "BatchResult",
    "Decision",
    "add_decisions",
    "decisions_of",
    "record_screening",
    "write_new_records_sheet",
]
