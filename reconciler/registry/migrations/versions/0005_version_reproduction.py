"""how each model version is reproduced (model_versions.reproduction)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 17:20:00

The producing dvc.lock stage, its command, params as locked and every dependency's digest,
as they were when the version landed (reconciler/dvc/lineage.py). Versions recorded before this
migration keep NULL; their version.added events hold no such record either.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("reproduction", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("reproduction")
