"""repositories are found by their root commit, which every clone shares

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 20:00:00

Until 0006 a repository was keyed by its folder name, so a clone under another name became a
second repository with a second history. From 0007 apply finds a repository by the root commit
of the registry branch (repositories.root_commit, unique). Rows written before keep their ids,
so every row is kept and the hash chain (which hashes no repository id) verifies as before: the
first apply after this migration fills in root_commit of the repository whose cursor commit is
on its history (reconcile.repository_key says how it chooses).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# A nullable column is added and dropped in place on every back end (SQLite has ALTER TABLE
# ... DROP COLUMN since 3.35): batch mode would copy the table, which the audit views read.


def upgrade() -> None:
    op.add_column("repositories", sa.Column("root_commit", sa.CHAR(40), nullable=True))
    op.create_index("uq_repositories_root_commit", "repositories", ["root_commit"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_repositories_root_commit", table_name="repositories")
    op.drop_column("repositories", "root_commit")
