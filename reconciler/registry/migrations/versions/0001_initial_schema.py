"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 20:30:41.620697
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.CHAR(length=64), nullable=False),
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("commit_sha", sa.CHAR(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=True),
        sa.Column("environment", sa.String(length=255), nullable=True),
        sa.Column("actor_name", sa.String(length=255), nullable=False),
        sa.Column("actor_email", sa.String(length=255), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.CHAR(length=64), nullable=False),
        sa.Column("hash", sa.CHAR(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_commit", ["repository_id", "commit_sha"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_subject",
            ["repository_id", "kind", "name", "occurred_at"],
            unique=False,
        )
        batch_op.create_index("uq_audit_events_seq", ["repository_id", "seq"], unique=True)

    op.create_table(
        "commits",
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("sha", sa.CHAR(length=40), nullable=False),
        sa.Column("parent_sha", sa.CHAR(length=40), nullable=True),
        sa.Column("author_name", sa.String(length=255), nullable=False),
        sa.Column("author_email", sa.String(length=255), nullable=False),
        sa.Column("authored_at", sa.DateTime(), nullable=False),
        sa.Column("committer_name", sa.String(length=255), nullable=False),
        sa.Column("committer_email", sa.String(length=255), nullable=False),
        sa.Column("committed_at", sa.DateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "sha", name=op.f("pk_commits")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "dataset_versions",
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("artifact", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("nfiles", sa.Integer(), nullable=True),
        sa.Column("deprecated", sa.Boolean(), nullable=False),
        sa.Column("added_commit", sa.CHAR(length=40), nullable=False),
        sa.Column("deprecated_commit", sa.CHAR(length=40), nullable=True),
        sa.Column("removed_commit", sa.CHAR(length=40), nullable=True),
        sa.PrimaryKeyConstraint(
            "repository_id", "dataset", "version", name=op.f("pk_dataset_versions")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dataset_versions_digest", ["repository_id", "digest"], unique=False
        )

    op.create_table(
        "datasets",
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_commit", sa.CHAR(length=40), nullable=False),
        sa.Column("retired_commit", sa.CHAR(length=40), nullable=True),
        sa.PrimaryKeyConstraint("repository_id", "name", name=op.f("pk_datasets")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "environments",
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("namespace", sa.String(length=255), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_commit", sa.CHAR(length=40), nullable=False),
        sa.Column("retired_commit", sa.CHAR(length=40), nullable=True),
        sa.PrimaryKeyConstraint("repository_id", "name", name=op.f("pk_environments")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.CHAR(length=64), nullable=False),
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("source_kind", sa.String(length=32), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("source_version", sa.String(length=128), nullable=False),
        sa.Column("target_name", sa.String(length=255), nullable=False),
        sa.Column("target_version", sa.String(length=128), nullable=False),
        sa.Column("via", sa.String(length=255), nullable=False),
        sa.Column("commit_sha", sa.CHAR(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_edges")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lineage_source",
            ["repository_id", "source_kind", "source_name", "source_version"],
            unique=False,
        )
        batch_op.create_index(
            "ix_lineage_target", ["repository_id", "target_name", "target_version"], unique=False
        )

    op.create_table(
        "model_versions",
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("artifact", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("nfiles", sa.Integer(), nullable=True),
        sa.Column("parent", sa.String(length=128), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("deprecated", sa.Boolean(), nullable=False),
        sa.Column("added_commit", sa.CHAR(length=40), nullable=False),
        sa.Column("deprecated_commit", sa.CHAR(length=40), nullable=True),
        sa.Column("removed_commit", sa.CHAR(length=40), nullable=True),
        sa.PrimaryKeyConstraint(
            "repository_id", "model", "version", name=op.f("pk_model_versions")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_model_versions_digest", ["repository_id", "digest"], unique=False)

    op.create_table(
        "models",
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("framework", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("created_commit", sa.CHAR(length=40), nullable=False),
        sa.Column("retired_commit", sa.CHAR(length=40), nullable=True),
        sa.PrimaryKeyConstraint("repository_id", "name", name=op.f("pk_models")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "reconcile_cursor",
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("commit_sha", sa.CHAR(length=40), nullable=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.CHAR(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_reconcile_cursor")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "renders",
        sa.Column("id", sa.CHAR(length=64), nullable=False),
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("commit_sha", sa.CHAR(length=40), nullable=False),
        sa.Column("environment", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("digest", sa.CHAR(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renders")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_renders_env_commit", ["repository_id", "environment", "commit_sha"], unique=False
        )

    op.create_table(
        "repositories",
        sa.Column("id", sa.CHAR(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repositories")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "stage_assignments",
        sa.Column("id", sa.CHAR(length=64), nullable=False),
        sa.Column("repository_id", sa.CHAR(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("traffic", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_from_commit", sa.CHAR(length=40), nullable=False),
        sa.Column("valid_to", sa.DateTime(), nullable=True),
        sa.Column("valid_to_commit", sa.CHAR(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_assignments")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("stage_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stage_env_time", ["repository_id", "environment", "valid_from"], unique=False
        )
        batch_op.create_index(
            "ix_stage_model_env",
            ["repository_id", "model", "environment", "valid_to"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("stage_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_stage_model_env")
        batch_op.drop_index("ix_stage_env_time")

    op.drop_table("stage_assignments")
    op.drop_table("repositories")
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.drop_index("ix_renders_env_commit")

    op.drop_table("renders")
    op.drop_table("reconcile_cursor")
    op.drop_table("models")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_versions_digest")

    op.drop_table("model_versions")
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_target")
        batch_op.drop_index("ix_lineage_source")

    op.drop_table("lineage_edges")
    op.drop_table("environments")
    op.drop_table("datasets")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_versions_digest")

    op.drop_table("dataset_versions")
    op.drop_table("commits")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("uq_audit_events_seq")
        batch_op.drop_index("ix_audit_events_subject")
        batch_op.drop_index("ix_audit_events_commit")

    op.drop_table("audit_events")
