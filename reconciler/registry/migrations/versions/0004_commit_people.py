"""who each change is credited to: proposers, merger, reviewers (commit_people)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 16:30:00

Commits reconciled before this migration have no rows here: apply wrote them before it knew
who proposed or reviewed them (`audit history` then shows the commit's author).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "commit_people",
        sa.Column("id", sa.CHAR(64), nullable=False),
        sa.Column("repository_id", sa.CHAR(64), nullable=False),
        sa.Column("commit_sha", sa.CHAR(40), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_commit_people"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_commit_people_commit", "commit_people", ["repository_id", "commit_sha"])
    op.create_index("ix_commit_people_email", "commit_people", ["repository_id", "email"])


def downgrade() -> None:
    op.drop_index("ix_commit_people_email", table_name="commit_people")
    op.drop_index("ix_commit_people_commit", table_name="commit_people")
    op.drop_table("commit_people")
