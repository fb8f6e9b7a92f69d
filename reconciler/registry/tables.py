"""The audit/lineage database schema (SQLAlchemy Core tables). Alembic migrations create it.

Portable by construction (docs/ARCHITECTURE.md, portability rules): keys are content hashes or
names, never AUTO_INCREMENT; indexed strings are at most VARCHAR(255), hashes CHAR(64); JSON
columns are payload only; every constraint is named; MySQL/MariaDB/TiDB tables are InnoDB,
utf8mb4, utf8mb4_bin.

Those MySQL table options are the migrations' alone (they create the tables there): declared
here as `mysql_charset=...`, they made SQLAlchemy import its whole MySQL dialect and its six
drivers' modules for every command on SQLite and PostgreSQL too (bench/gto.py).

Core tables, not ORM classes: every statement the project sends is Core, and importing
sqlalchemy.orm plus mapping the classes was a fifth of a `reconciler show` (bench/gto.py).
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from reconciler.limits import NAME_CHARS, VERSION_CHARS

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

METADATA = MetaData(naming_convention=NAMING)

Hash = CHAR(64)
Name = String(NAME_CHARS)
Sha = CHAR(40)
Version = String(VERSION_CHARS)

# A reconciled git repository; every other row carries its id.
REPOSITORIES = Table(
    "repositories", METADATA,
    Column("id", Hash, primary_key=True),
    Column("name", Name, nullable=False),
    # The first-parent root of the registry branch: how every clone finds its repository
    # (NULL until the first apply after migration 0007 fills it in).
    Column("root_commit", Sha),
    Index("uq_repositories_root_commit", "root_commit", unique=True))

# A commit that changed the registry: who, when, what message.
COMMITS = Table(
    "commits", METADATA,
    Column("repository_id", Hash, primary_key=True),
    Column("sha", Sha, primary_key=True),
    Column("parent_sha", Sha),
    Column("author_name", Name, nullable=False),
    Column("author_email", Name, nullable=False),
    Column("authored_at", DateTime(), nullable=False),
    Column("committer_name", Name, nullable=False),
    Column("committer_email", Name, nullable=False),
    Column("committed_at", DateTime(), nullable=False),
    Column("message", Text, nullable=False),
    # The zones the times were written in (minutes east of UTC); None: written before 0003.
    Column("author_tz_offset", SmallInteger),
    Column("committer_tz_offset", SmallInteger))

# Who a commit's change is credited to: proposer, merger, reviewer, approver, coauthor (see
# reconciler/git/people.py); position keeps the order they were found in.
COMMIT_PEOPLE = Table(
    "commit_people", METADATA,
    Column("id", Hash, primary_key=True),
    Column("repository_id", Hash, nullable=False),
    Column("commit_sha", Sha, nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("name", Name, nullable=False),
    Column("email", Name, nullable=False),
    Index("ix_commit_people_commit", "repository_id", "commit_sha"),
    Index("ix_commit_people_email", "repository_id", "email"))

# A model as its manifest last described it; retired models keep their row.
MODELS = Table(
    "models", METADATA,
    Column("repository_id", Hash, primary_key=True),
    Column("name", Name, primary_key=True),
    Column("framework", String(64), nullable=False),
    Column("owner", Name),
    Column("description", Text),
    Column("labels", JSON),
    Column("created_commit", Sha, nullable=False),
    Column("retired_commit", Sha))

# A model version and its bytes; removal and deprecation are marked, never deleted.
MODEL_VERSIONS = Table(
    "model_versions", METADATA,
    Column("repository_id", Hash, primary_key=True),
    Column("model", Name, primary_key=True),
    Column("version", Version, primary_key=True),
    Column("artifact", Text, nullable=False),
    Column("digest", String(80)),
    Column("size", BigInteger),
    Column("nfiles", Integer),
    Column("parent", Version),
    Column("metrics", JSON),
    Column("params", JSON),
    Column("deprecated", Boolean, nullable=False),
    Column("added_commit", Sha, nullable=False),
    Column("deprecated_commit", Sha),
    Column("removed_commit", Sha),
    # How to reproduce it, as dvc.lock recorded when it landed (lineage.reproduction).
    Column("reproduction", JSON),
    Index("ix_model_versions_digest", "repository_id", "digest"))

# A dataset as its manifest last described it.
DATASETS = Table(
    "datasets", METADATA,
    Column("repository_id", Hash, primary_key=True),
    Column("name", Name, primary_key=True),
    Column("owner", Name),
    Column("description", Text),
    Column("created_commit", Sha, nullable=False),
    Column("retired_commit", Sha))

# A dataset version and its bytes.
DATASET_VERSIONS = Table(
    "dataset_versions", METADATA,
    Column("repository_id", Hash, primary_key=True),
    Column("dataset", Name, primary_key=True),
    Column("version", Version, primary_key=True),
    Column("artifact", Text, nullable=False),
    Column("digest", String(80)),
    Column("size", BigInteger),
    Column("nfiles", Integer),
    Column("deprecated", Boolean, nullable=False),
    Column("added_commit", Sha, nullable=False),
    Column("deprecated_commit", Sha),
    Column("removed_commit", Sha),
    Index("ix_dataset_versions_digest", "repository_id", "digest"))

# A deployment environment and its spec.
ENVIRONMENTS = Table(
    "environments", METADATA,
    Column("repository_id", Hash, primary_key=True),
    Column("name", Name, primary_key=True),
    Column("namespace", Name, nullable=False),
    Column("target", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("created_commit", Sha, nullable=False),
    Column("retired_commit", Sha))

# source (a dataset version or a parent model version) -> target model version.
LINEAGE_EDGES = Table(
    "lineage_edges", METADATA,
    Column("id", Hash, primary_key=True),
    Column("repository_id", Hash, nullable=False),
    Column("source_kind", String(32), nullable=False),
    Column("source_name", Name, nullable=False),
    Column("source_version", Version, nullable=False),
    Column("target_name", Name, nullable=False),
    Column("target_version", Version, nullable=False),
    Column("via", Name, nullable=False),
    Column("commit_sha", Sha, nullable=False),
    Index("ix_lineage_target", "repository_id", "target_name", "target_version"),
    Index("ix_lineage_source", "repository_id", "source_kind", "source_name", "source_version"))

# What an environment served for a model from valid_from until valid_to (None: still).
STAGE_ASSIGNMENTS = Table(
    "stage_assignments", METADATA,
    Column("id", Hash, primary_key=True),
    Column("repository_id", Hash, nullable=False),
    Column("model", Name, nullable=False),
    Column("environment", Name, nullable=False),
    Column("role", String(16), nullable=False),  # primary or canary
    Column("version", Version, nullable=False),
    Column("traffic", Integer),  # canary rows: their percentage
    Column("valid_from", DateTime(), nullable=False),
    Column("valid_from_commit", Sha, nullable=False),
    Column("valid_to", DateTime()),
    Column("valid_to_commit", Sha),
    Index("ix_stage_env_time", "repository_id", "environment", "valid_from"),
    Index("ix_stage_model_env", "repository_id", "model", "environment", "valid_to"),
    Index("ix_stage_assignments_current", "repository_id", "valid_to", "environment"))

# Append-only and hash-chained: hash = sha256(prev_hash + canonical row).
AUDIT_EVENTS = Table(
    "audit_events", METADATA,
    Column("id", Hash, primary_key=True),
    Column("repository_id", Hash, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("commit_sha", Sha, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", Name, nullable=False),
    Column("version", Version),
    Column("environment", Name),
    Column("actor_name", Name, nullable=False),
    Column("actor_email", Name, nullable=False),
    Column("occurred_at", DateTime(), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("prev_hash", Hash, nullable=False),
    Column("hash", Hash, nullable=False),
    Index("uq_audit_events_seq", "repository_id", "seq", unique=True),
    # A model's events in order, out of the index (migration 0006 says what it saved).
    Index("ix_audit_events_subject_seq", "repository_id", "kind", "name", "seq"),
    Index("ix_audit_events_commit", "repository_id", "commit_sha"),
    Index("ix_audit_events_type_commit", "repository_id", "event_type", "commit_sha", "seq"))

# The last reconciled commit; advanced only by compare-and-set on `generation`.
RECONCILE_CURSOR = Table(
    "reconcile_cursor", METADATA,
    Column("repository_id", Hash, primary_key=True),
    Column("commit_sha", Sha),
    Column("generation", BigInteger, nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("last_hash", Hash, nullable=False),
    Column("updated_at", DateTime(), nullable=False))

# The digest of each rendered deployment config, per environment and commit.
RENDERS = Table(
    "renders", METADATA,
    Column("id", Hash, primary_key=True),
    Column("repository_id", Hash, nullable=False),
    Column("commit_sha", Sha, nullable=False),
    Column("environment", Name, nullable=False),
    Column("model", Name, nullable=False),
    Column("path", Text, nullable=False),
    Column("digest", Hash, nullable=False),
    Index("ix_renders_env_commit", "repository_id", "environment", "commit_sha"))
