"""The audit/lineage database schema (SQLAlchemy 2.0 declarative). Alembic migrations create it.

Portable by construction (DESIGN.md): keys are content hashes or names, never AUTO_INCREMENT;
indexed strings are at most VARCHAR(255), hashes CHAR(64); JSON columns are payload only;
every constraint is named; MySQL/MariaDB/TiDB tables are utf8mb4.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}

Hash = CHAR(64)
Name = String(255)
Sha = CHAR(40)


class Base(DeclarativeBase):
    """Declarative base with named constraints (DESIGN.md rule 8)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: DateTime()}


class Repository(Base):
    """A reconciled git repository; every other row carries its id."""

    __tablename__ = "repositories"
    __table_args__ = (MYSQL,)

    id: Mapped[str] = mapped_column(Hash, primary_key=True)
    name: Mapped[str] = mapped_column(Name)


class Commit(Base):
    """A commit that changed the registry: who, when, what message."""

    __tablename__ = "commits"
    __table_args__ = (MYSQL,)

    repository_id: Mapped[str] = mapped_column(Hash, primary_key=True)
    sha: Mapped[str] = mapped_column(Sha, primary_key=True)
    parent_sha: Mapped[str | None] = mapped_column(Sha)
    author_name: Mapped[str] = mapped_column(Name)
    author_email: Mapped[str] = mapped_column(Name)
    authored_at: Mapped[datetime]
    committer_name: Mapped[str] = mapped_column(Name)
    committer_email: Mapped[str] = mapped_column(Name)
    committed_at: Mapped[datetime]
    message: Mapped[str] = mapped_column(Text)
    # The zones the times were written in (minutes east of UTC); None: written before 0003.
    author_tz_offset: Mapped[int | None] = mapped_column(SmallInteger)
    committer_tz_offset: Mapped[int | None] = mapped_column(SmallInteger)


class CommitPerson(Base):
    """Who a commit's change is credited to: proposer, merger, reviewer, approver, coauthor
    (see reconciler/people.py); position keeps the order they were found in."""

    __tablename__ = "commit_people"
    __table_args__ = (Index("ix_commit_people_commit", "repository_id", "commit_sha"),
                      Index("ix_commit_people_email", "repository_id", "email"), MYSQL)

    id: Mapped[str] = mapped_column(Hash, primary_key=True)
    repository_id: Mapped[str] = mapped_column(Hash)
    commit_sha: Mapped[str] = mapped_column(Sha)
    position: Mapped[int] = mapped_column(SmallInteger)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Name)
    email: Mapped[str] = mapped_column(Name)


class Model(Base):
    """A model as its manifest last described it; retired models keep their row."""

    __tablename__ = "models"
    __table_args__ = (MYSQL,)

    repository_id: Mapped[str] = mapped_column(Hash, primary_key=True)
    name: Mapped[str] = mapped_column(Name, primary_key=True)
    framework: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(Name)
    description: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[dict[str, Any] | None]
    created_commit: Mapped[str] = mapped_column(Sha)
    retired_commit: Mapped[str | None] = mapped_column(Sha)


class ModelVersion(Base):
    """A model version and its bytes; removal and deprecation are marked, never deleted."""

    __tablename__ = "model_versions"
    __table_args__ = (Index("ix_model_versions_digest", "repository_id", "digest"), MYSQL)

    repository_id: Mapped[str] = mapped_column(Hash, primary_key=True)
    model: Mapped[str] = mapped_column(Name, primary_key=True)
    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    artifact: Mapped[str] = mapped_column(Text)
    digest: Mapped[str | None] = mapped_column(String(80))
    size: Mapped[int | None] = mapped_column(BigInteger)
    nfiles: Mapped[int | None] = mapped_column(Integer)
    parent: Mapped[str | None] = mapped_column(String(128))
    metrics: Mapped[dict[str, Any] | None]
    params: Mapped[dict[str, Any] | None]
    deprecated: Mapped[bool] = mapped_column(Boolean)
    added_commit: Mapped[str] = mapped_column(Sha)
    deprecated_commit: Mapped[str | None] = mapped_column(Sha)
    removed_commit: Mapped[str | None] = mapped_column(Sha)
    # How to reproduce it, as dvc.lock recorded when it landed (lineage.reproduction).
    reproduction: Mapped[dict[str, Any] | None]


class Dataset(Base):
    """A dataset as its manifest last described it."""

    __tablename__ = "datasets"
    __table_args__ = (MYSQL,)

    repository_id: Mapped[str] = mapped_column(Hash, primary_key=True)
    name: Mapped[str] = mapped_column(Name, primary_key=True)
    owner: Mapped[str | None] = mapped_column(Name)
    description: Mapped[str | None] = mapped_column(Text)
    created_commit: Mapped[str] = mapped_column(Sha)
    retired_commit: Mapped[str | None] = mapped_column(Sha)


class DatasetVersion(Base):
    """A dataset version and its bytes."""

    __tablename__ = "dataset_versions"
    __table_args__ = (Index("ix_dataset_versions_digest", "repository_id", "digest"), MYSQL)

    repository_id: Mapped[str] = mapped_column(Hash, primary_key=True)
    dataset: Mapped[str] = mapped_column(Name, primary_key=True)
    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    artifact: Mapped[str] = mapped_column(Text)
    digest: Mapped[str | None] = mapped_column(String(80))
    size: Mapped[int | None] = mapped_column(BigInteger)
    nfiles: Mapped[int | None] = mapped_column(Integer)
    deprecated: Mapped[bool] = mapped_column(Boolean)
    added_commit: Mapped[str] = mapped_column(Sha)
    deprecated_commit: Mapped[str | None] = mapped_column(Sha)
    removed_commit: Mapped[str | None] = mapped_column(Sha)


class Environment(Base):
    """A deployment environment and its spec."""

    __tablename__ = "environments"
    __table_args__ = (MYSQL,)

    repository_id: Mapped[str] = mapped_column(Hash, primary_key=True)
    name: Mapped[str] = mapped_column(Name, primary_key=True)
    namespace: Mapped[str] = mapped_column(Name)
    target: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]]
    created_commit: Mapped[str] = mapped_column(Sha)
    retired_commit: Mapped[str | None] = mapped_column(Sha)


class LineageEdge(Base):
    """source (a dataset version or a parent model version) -> target model version."""

    __tablename__ = "lineage_edges"
    __table_args__ = (Index("ix_lineage_target", "repository_id", "target_name",
                            "target_version"),
                      Index("ix_lineage_source", "repository_id", "source_kind", "source_name",
                            "source_version"), MYSQL)

    id: Mapped[str] = mapped_column(Hash, primary_key=True)
    repository_id: Mapped[str] = mapped_column(Hash)
    source_kind: Mapped[str] = mapped_column(String(32))
    source_name: Mapped[str] = mapped_column(Name)
    source_version: Mapped[str] = mapped_column(String(128))
    target_name: Mapped[str] = mapped_column(Name)
    target_version: Mapped[str] = mapped_column(String(128))
    via: Mapped[str] = mapped_column(Name)
    commit_sha: Mapped[str] = mapped_column(Sha)


class StageAssignment(Base):
    """What an environment served for a model from valid_from until valid_to (None: still)."""

    __tablename__ = "stage_assignments"
    __table_args__ = (Index("ix_stage_env_time", "repository_id", "environment", "valid_from"),
                      Index("ix_stage_model_env", "repository_id", "model", "environment",
                            "valid_to"),
                      Index("ix_stage_assignments_current", "repository_id", "valid_to",
                            "environment"), MYSQL)

    id: Mapped[str] = mapped_column(Hash, primary_key=True)
    repository_id: Mapped[str] = mapped_column(Hash)
    model: Mapped[str] = mapped_column(Name)
    environment: Mapped[str] = mapped_column(Name)
    role: Mapped[str] = mapped_column(String(16))  # primary or canary
    version: Mapped[str] = mapped_column(String(128))
    traffic: Mapped[int | None] = mapped_column(Integer)  # canary rows: their percentage
    valid_from: Mapped[datetime]
    valid_from_commit: Mapped[str] = mapped_column(Sha)
    valid_to: Mapped[datetime | None]
    valid_to_commit: Mapped[str | None] = mapped_column(Sha)


class AuditEvent(Base):
    """Append-only and hash-chained: hash = sha256(prev_hash + canonical row)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("uq_audit_events_seq", "repository_id", "seq", unique=True),
                      Index("ix_audit_events_subject", "repository_id", "kind", "name",
                            "occurred_at"),
                      Index("ix_audit_events_commit", "repository_id", "commit_sha"), MYSQL)

    id: Mapped[str] = mapped_column(Hash, primary_key=True)
    repository_id: Mapped[str] = mapped_column(Hash)
    seq: Mapped[int] = mapped_column(BigInteger)
    commit_sha: Mapped[str] = mapped_column(Sha)
    event_type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Name)
    version: Mapped[str | None] = mapped_column(String(128))
    environment: Mapped[str | None] = mapped_column(Name)
    actor_name: Mapped[str] = mapped_column(Name)
    actor_email: Mapped[str] = mapped_column(Name)
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(Hash)
    hash: Mapped[str] = mapped_column(Hash)


class ReconcileCursor(Base):
    """The last reconciled commit; advanced only by compare-and-set on `generation`."""

    __tablename__ = "reconcile_cursor"
    __table_args__ = (MYSQL,)

    repository_id: Mapped[str] = mapped_column(Hash, primary_key=True)
    commit_sha: Mapped[str | None] = mapped_column(Sha)
    generation: Mapped[int] = mapped_column(BigInteger)
    event_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(Hash)
    updated_at: Mapped[datetime]


class Render(Base):
    """The digest of each rendered deployment config, per environment and commit."""

    __tablename__ = "renders"
    __table_args__ = (Index("ix_renders_env_commit", "repository_id", "environment",
                            "commit_sha"), MYSQL)

    id: Mapped[str] = mapped_column(Hash, primary_key=True)
    repository_id: Mapped[str] = mapped_column(Hash)
    commit_sha: Mapped[str] = mapped_column(Sha)
    environment: Mapped[str] = mapped_column(Name)
    model: Mapped[str] = mapped_column(Name)
    path: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(Hash)


def table_of(cls: type[Base]) -> Table:
    """The Core table behind a mapped class, for bulk insert/update statements."""
    return cast(Table, cls.__table__)
