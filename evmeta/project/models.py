"""Tables of a review project (SQLAlchemy 2 declarative models).

One row per thing a reviewer did or evmeta computed, never updated in place except where
noted: a search export imported (``SearchExport``) and its records (``Record``), the
duplicate clusters they fall in (``Cluster``), a batch of screening decisions read from a
workbook (``ScreeningBatch``) with one row per reviewer, record and stage
(``ScreeningDecision``), an extraction workbook imported (``ExtractionVersion``) with the
cells it changed (``CellChange``), an analysis spec registered (``AnalysisSpecRow``) and each
refit of it (``AnalysisRunRow``). The schema is created by the Alembic migrations in
``evmeta/project/migrations``; ``tests/test_project_db.py`` checks that they build exactly
these tables.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the project tables."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class ProjectInfo(Base):
    """The project itself: one row, written by ``evmeta init``."""

    __tablename__ = "project_info"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    evmeta_version: Mapped[str] = mapped_column(String(40))


class SearchExport(Base):
    """One search export file (one database, one search date)."""

    __tablename__ = "search_exports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(500))
    database: Mapped[str] = mapped_column(String(200))
    searched_on: Mapped[dt.date] = mapped_column(Date)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    stored_path: Mapped[str] = mapped_column(String(1000))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    imported_by: Mapped[str] = mapped_column(String(200))
    n_records: Mapped[int] = mapped_column(Integer)
    n_new_unique: Mapped[int] = mapped_column(Integer)
    screening_sheet: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class Cluster(Base):
    """A set of records that are one work; ``kept_record_id`` is the one screened."""

    __tablename__ = "clusters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("search_exports.id"))
    kept_record_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Record(Base):
    """One record of a search export as read (``authors`` is a JSON list of names)."""

    __tablename__ = "records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("search_exports.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[str] = mapped_column(Text, default="[]")
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    doi: Mapped[str] = mapped_column(String(500), default="")
    journal: Mapped[str] = mapped_column(String(500), default="")
    pages: Mapped[str] = mapped_column(String(100), default="")
    pmid: Mapped[str] = mapped_column(String(40), default="")
    source_format: Mapped[str] = mapped_column(String(20), default="")
    database: Mapped[str] = mapped_column(String(200), default="")
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), index=True)
    keep: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)


class ScreeningBatch(Base):
    """One filled screening workbook read into the project."""

    __tablename__ = "screening_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    imported_by: Mapped[str] = mapped_column(String(200))
    n_decisions: Mapped[int] = mapped_column(Integer)


class ScreeningDecision(Base):
    """One reviewer's decision on one record at one stage (``title_abstract``,
    ``full_text`` or ``final``); a later batch supersedes, never deletes, an earlier one."""

    __tablename__ = "screening_decisions"
    __table_args__ = (Index("ix_decision_lookup", "record_id", "stage", "reviewer"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("screening_batches.id"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    stage: Mapped[str] = mapped_column(String(20))
    reviewer: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(100), nullable=True)


class ExtractionVersion(Base):
    """One imported extraction workbook; ``version`` counts 1, 2, ..."""

    __tablename__ = "extraction_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(1000))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    imported_by: Mapped[str] = mapped_column(String(200))
    n_studies: Mapped[int] = mapped_column(Integer)
    n_cells_changed: Mapped[int] = mapped_column(Integer)
    #: The newest search export held when this version was imported (the PRISMA boundary
    #: between "previous" and "new" studies of the next update).
    searches_through: Mapped[int] = mapped_column(Integer, default=0)


class CellChange(Base):
    """A cell whose value differs from the previous version (``old_value`` None: new cell,
    ``new_value`` None: cell emptied or its row deleted). Values are stored as text."""

    __tablename__ = "cell_changes"
    __table_args__ = (Index("ix_cell_lookup", "sheet", "row_key", "column_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("extraction_versions.id"), index=True)
    sheet: Mapped[str] = mapped_column(String(100))
    row_key: Mapped[str] = mapped_column(String(300))
    excel_row: Mapped[int | None] = mapped_column(Integer, nullable=True)
    column_name: Mapped[str] = mapped_column(String(200))
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str | None] = mapped_column(Text, nullable=True)


class AnalysisSpecRow(Base):
    """An analysis spec the project refits after every extraction import."""

    __tablename__ = "analysis_specs"
    __table_args__ = (UniqueConstraint("name", "sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    toml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AnalysisRunRow(Base):
    """One refit of a spec on one extraction version (``results`` is JSON text)."""

    __tablename__ = "analysis_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec_id: Mapped[int] = mapped_column(ForeignKey("analysis_specs.id"))
    extraction_version_id: Mapped[int] = mapped_column(ForeignKey("extraction_versions.id"))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    inputs: Mapped[str] = mapped_column(Text, default="{}")
    results: Mapped[str] = mapped_column(Text, default="{}")
    report_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    changes_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


__all__ = [
    "AnalysisRunRow",
    "AnalysisSpecRow",
    "Base",
    "CellChange",
    "Cluster",
    "ExtractionVersion",
    "ProjectInfo",
    "Record",
    "ScreeningBatch",
    "ScreeningDecision",
    "SearchExport",
]
