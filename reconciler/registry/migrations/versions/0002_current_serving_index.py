"""an index for what serves now

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stage_assignments_current", "stage_assignments",
                    ["repository_id", "valid_to", "environment"])


def downgrade() -> None:
    op.drop_index("ix_stage_assignments_current", table_name="stage_assignments")
