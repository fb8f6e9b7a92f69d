"""audit views, an index for what serves now, the time zones of commits

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reconciler.views import create_views, drop_views

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("commits", sa.Column("author_tz_offset", sa.SmallInteger(), nullable=True))
    op.add_column("commits", sa.Column("committer_tz_offset", sa.SmallInteger(),
                                       nullable=True))
    op.create_index("ix_stage_assignments_current", "stage_assignments",
                    ["repository_id", "valid_to", "environment"])
    create_views(op.get_bind())


def downgrade() -> None:
    drop_views(op.get_bind())
    op.drop_index("ix_stage_assignments_current", table_name="stage_assignments")
    with op.batch_alter_table("commits") as batch:
        batch.drop_column("committer_tz_offset")
        batch.drop_column("author_tz_offset")
