"""Initial schema of a review project: searches, records, clusters, screening, extraction
versions with cell history, analysis specs and runs.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "project_info",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        _when("created_at"),
        sa.Column("evmeta_version", sa.String(40), nullable=False),
    )
    op.create_table(
        "search_exports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("database", sa.String(200), nullable=False),
        sa.Column("searched_on", sa.Date, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("stored_path", sa.String(1000), nullable=False),
        _when("imported_at"),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("n_records", sa.Integer, nullable=False),
        sa.Column("n_new_unique", sa.Integer, nullable=False),
        sa.Column("screening_sheet", sa.String(1000), nullable=True),
    )
    op.create_table(
        "clusters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("search_id", sa.Integer, sa.ForeignKey("search_exports.id"), nullable=False),
        sa.Column("kept_record_id", sa.Integer, nullable=True),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("search_id", sa.Integer, sa.ForeignKey("search_exports.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("authors", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=True),
        sa.Column("doi", sa.String(500), nullable=False),
        sa.Column("journal", sa.String(500), nullable=False),
        sa.Column("pages", sa.String(100), nullable=False),
        sa.Column("pmid", sa.String(40), nullable=False),
        sa.Column("source_format", sa.String(20), nullable=False),
        sa.Column("database", sa.String(200), nullable=False),
        sa.Column("cluster_id", sa.Integer, sa.ForeignKey("clusters.id"), nullable=False, index=True),
        sa.Column("keep", sa.Boolean, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
    )
    _screening_and_extraction()
    _analysis()


def _screening_and_extraction() -> None:
    op.create_table(
        "screening_batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _when("imported_at"),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("n_decisions", sa.Integer, nullable=False),
    )
    op.create_table(
        "screening_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("screening_batches.id"), nullable=False, index=True),
        sa.Column("record_id", sa.Integer, sa.ForeignKey("records.id"), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(100), nullable=True),
    )
    op.create_index("ix_decision_lookup", "screening_decisions", ["record_id", "stage", "reviewer"])
    op.create_table(
        "extraction_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, unique=True),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("stored_path", sa.String(1000), nullable=False),
        _when("imported_at"),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("n_studies", sa.Integer, nullable=False),
        sa.Column("n_cells_changed", sa.Integer, nullable=False),
        sa.Column("searches_through", sa.Integer, nullable=False),
    )
    op.create_table(
        "cell_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("extraction_versions.id"), nullable=False, index=True
        ),
        sa.Column("sheet", sa.String(100), nullable=False),
        sa.Column("row_key", sa.String(300), nullable=False),
        sa.Column("excel_row", sa.Integer, nullable=True),
        sa.Column("column_name", sa.String(200), nullable=False),
        sa.Column("old_value", sa.Text, nullable=True),
        sa.Column("new_value", sa.Text, nullable=True),
    )
    op.create_index("ix_cell_lookup", "cell_changes", ["sheet", "row_key", "column_name"])


def _analysis() -> None:
    op.create_table(
        "analysis_specs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("toml", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _when("added_at"),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.UniqueConstraint("name", "sha256"),
    )
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("spec_id", sa.Integer, sa.ForeignKey("analysis_specs.id"), nullable=False),
        sa.Column(
            "extraction_version_id", sa.Integer, sa.ForeignKey("extraction_versions.id"), nullable=False
        ),
        _when("started_at"),
        _when("finished_at", nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
        sa.Column("report_path", sa.String(1000), nullable=True),
        sa.Column("changes_path", sa.String(1000), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for table in [
        "analysis_runs",
        "analysis_specs",
        "cell_changes",
        "extraction_versions",
        "screening_decisions",
        "screening_batches",
        "records",
        "clusters",
        "search_exports",
        "project_info",
    ]:
        op.drop_table(table)
