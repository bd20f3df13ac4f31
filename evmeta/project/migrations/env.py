"""Alembic environment of a review project: runs on the connection evmeta hands over
(``config.attributes["connection"]``), so migrations share the caller's transaction."""

from __future__ import annotations

from alembic import context

from evmeta.project.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
