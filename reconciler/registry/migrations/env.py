"""Alembic environment: runs migrations on the connection reconciler.registry.db hands it."""

from __future__ import annotations

from alembic import context

from reconciler.registry.tables import METADATA

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=METADATA,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
