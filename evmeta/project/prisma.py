"""PRISMA 2020 counts of an updated review, from the project's database.

The flow diagram for updated reviews (Page et al. 2021, BMJ 372:n71, Figure 1, the template
for updated reviews) has a box of the studies and reports included in the previous version,
the usual flow for the records of the new searches only, and the totals. The boundary is
the previous extraction version: searches imported after it are new. Counts come from the
latest consensus decision per record and stage; records kept but not yet screened are
counted as removed for other reasons, and a note says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from evmeta.project.extraction import cells_at
from evmeta.project.project import Project
from evmeta.review.prisma import PrismaCounts


@dataclass(frozen=True)
class UpdatedPrisma:
    """The new-studies flow plus the previous version's and total studies and reports."""

    new: PrismaCounts
    previous_studies: int
    previous_reports: int
    total_studies: int
    total_reports: int
    notes: list[str] = field(default_factory=list)

    def to_frame(self):
        """The counts CSV: the new flow's rows, then the previous and total boxes."""
        import pandas as pd

        extra = pd.DataFrame(
            [
                ("previous", "studies included in previous version", "studies", self.previous_studies),
                ("previous", "studies included in previous version", "reports", self.previous_reports),
                ("included", "total studies included in review", "studies", self.total_studies),
                ("included", "total studies included in review", "reports", self.total_reports),
            ],
            columns=["stage", "box", "item", "n"],
        )
        return pd.concat([self.new.to_frame(), extra], ignore_index=True)


def _latest_consensus(session: Any) -> dict[tuple[int, str], tuple[str, str | None]]:
    from sqlalchemy import select

    from evmeta.project.models import ScreeningDecision as D
    from evmeta.project.screening import CONSENSUS

    rows = session.execute(
        select(D.record_id, D.stage, D.decision, D.reason).where(D.reviewer == CONSENSUS).order_by(D.id)
    )
    return {(r.record_id, r.stage): (r.decision, r.reason) for r in rows}


def _studies(session: Any, version: int | None) -> set[str]:
    if version is None:
        return set()
    return {
        row
        for sheet, row, column in cells_at(session, version)
        if sheet == "studies" and column == "study_id"
    }


def _flow(records: list[Any], decisions: dict, notes: list[str]) -> dict[str, Any]:
    kept = [r for r in records if r.keep]
    ta = {r.id: decisions.get((r.id, "title_abstract"), (None, None))[0] for r in kept}
    ft = {r.id: decisions.get((r.id, "full_text"), (None, None)) for r in kept}
    final = {r.id: decisions.get((r.id, "final"), (None, None))[0] for r in kept}
    unscreened = [rid for rid, d in ta.items() if d is None]
    if unscreened:
        notes.append(
            f"{len(unscreened)} record(s) kept by de-duplication are in no screening log recorded (not yet "
            "screened, or deleted from the log, e.g. retracted), counted as removed for other reasons: "
            f"record_id {', '.join(map(str, unscreened[:20]))}{' ...' if len(unscreened) > 20 else ''}"
        )
    sought = [rid for rid, d in ta.items() if d == "include"]
    not_retrieved = sum(ft[rid][0] == "not_retrieved" for rid in sought)
    reasons = Counter(ft[rid][1] or "other" for rid in sought if ft[rid][0] == "exclude")
    return {
        "duplicates_removed": sum(not r.keep for r in records),
        "removed_other": len(unscreened),
        "removed_other_ids": tuple(unscreened),
        "screened": len(kept) - len(unscreened),
        "excluded_screening": sum(d == "exclude" for d in ta.values()),
        "sought": len(sought),
        "not_retrieved": not_retrieved,
        "assessed": len(sought) - not_retrieved,
        "excluded_reasons": dict(sorted(reasons.items())),
        "reports_included": sum(final[rid] == "include" for rid in sought),
    }


def updated_prisma(project: Project, version: int) -> UpdatedPrisma:
    """Counts of the updated-review flow diagram for extraction ``version`` (see the module
    docstring); for version 1 the previous boxes are 0 and the flow covers every search."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from evmeta.project.models import ExtractionVersion as V
    from evmeta.project.models import Record, SearchExport

    with Session(project.engine) as session:
        current = session.scalars(select(V).where(V.version == version)).one()
        previous = session.scalars(select(V).where(V.version < version).order_by(V.version.desc())).first()
        boundary = previous.searches_through if previous is not None else 0
        decisions = _latest_consensus(session)
        searches = session.scalars(select(SearchExport).order_by(SearchExport.id)).all()
        records = session.scalars(select(Record).order_by(Record.id)).all()
        new_searches = [s for s in searches if boundary < s.id <= current.searches_through]
        new_ids = {s.id for s in new_searches}
        old = [r for r in records if r.search_id <= boundary and r.keep]
        previous_reports = sum(decisions.get((r.id, "final"), (None,))[0] == "include" for r in old)
        now, before = _studies(session, version), _studies(session, previous.version if previous else None)
    notes: list[str] = []
    if before - now:
        notes.append(
            f"{len(before - now)} stud{'y' if len(before - now) == 1 else 'ies'} of the previous version "
            f"no longer in the extraction workbook: {', '.join(sorted(before - now))}"
        )
    databases: dict[str, int] = {}
    for search in new_searches:
        databases[search.database] = databases.get(search.database, 0) + search.n_records
    flow = _flow([r for r in records if r.search_id in new_ids], decisions, notes)
    new = PrismaCounts(databases=databases, studies_included=len(now - before), notes=notes, **flow)
    return UpdatedPrisma(
        new, len(before), previous_reports, len(now), previous_reports + new.reports_included, notes
    )


__all__ = ["UpdatedPrisma", "updated_prisma"]
