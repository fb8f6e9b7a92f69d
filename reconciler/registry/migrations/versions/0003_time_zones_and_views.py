"""the time zones of commits, and the audit views

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:30:00

The views are created from reconciler/registry/views.py, which holds their newest definitions:
a change to a view comes with a new migration that drops and recreates them, and this one must
then keep a copy of the definitions it created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reconciler.registry.views import create_views, drop_views

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("commits", sa.Column("author_tz_offset", sa.SmallInteger(), nullable=True))
    op.add_column("commits", sa.Column("committer_tz_offset", sa.SmallInteger(),
                                       nullable=True))
    drop_views(op.get_bind())  # IF EXISTS: a no-op on a database that never had them
    create_views(op.get_bind())


def downgrade() -> None:
    drop_views(op.get_bind())
    with op.batch_alter_table("commits") as batch:
        batch.drop_column("committer_tz_offset")
        batch.drop_column("author_tz_offset")
