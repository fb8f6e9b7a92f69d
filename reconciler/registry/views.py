"""SQL views for BI tools and hand-written queries: serving now and over time, lineage with
names, events with their commit and author. Created by migration 0003 (and with the tables
of a new embedded database); a later change to a view is a new migration that replaces it.

No JSON functions (docs/ARCHITECTURE.md, portability rule 7): every fact a view offers is a
column. Times are UTC.

SQLite keeps datetimes as text with microseconds: its views give them as `datetime(...)`
(YYYY-MM-DD HH:MM:SS) so they compare right with `datetime('...ISO-8601...')` of a moment.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_VIEWS = {
    "serving_history": """
SELECT r.name AS repository, s.environment, s.model, s.role, s.version, s.traffic,
       v.digest, v.size, {valid_from} AS valid_from, s.valid_from_commit,
       {valid_to} AS valid_to, s.valid_to_commit
FROM stage_assignments s
JOIN repositories r ON r.id = s.repository_id
LEFT JOIN model_versions v
  ON v.repository_id = s.repository_id AND v.model = s.model AND v.version = s.version""",
    "serving_now": """
SELECT r.name AS repository, s.environment, s.model, s.role, s.version, s.traffic,
       v.digest, v.size, {valid_from} AS valid_from, s.valid_from_commit
FROM stage_assignments s
JOIN repositories r ON r.id = s.repository_id
LEFT JOIN model_versions v
  ON v.repository_id = s.repository_id AND v.model = s.model AND v.version = s.version
WHERE s.valid_to IS NULL""",
    "lineage_names": """
SELECT r.name AS repository, e.source_kind, e.source_name, e.source_version,
       e.target_name AS model, e.target_version AS version, e.via, e.commit_sha,
       {committed_at} AS committed_at
FROM lineage_edges e
JOIN repositories r ON r.id = e.repository_id
LEFT JOIN commits c ON c.repository_id = e.repository_id AND c.sha = e.commit_sha""",
    "event_log": """
SELECT r.name AS repository, a.seq, a.event_type, a.kind, a.name, a.version, a.environment,
       {occurred_at} AS occurred_at, a.commit_sha, a.actor_name, a.actor_email,
       c.author_name, c.author_email, {authored_at} AS authored_at, c.author_tz_offset,
       c.committer_name, c.committer_email, {committed_at} AS committed_at,
       c.committer_tz_offset
FROM audit_events a
JOIN repositories r ON r.id = a.repository_id
LEFT JOIN commits c ON c.repository_id = a.repository_id AND c.sha = a.commit_sha""",
}
_TIMES = {"valid_from": "s.valid_from", "valid_to": "s.valid_to", "occurred_at": "a.occurred_at",
          "authored_at": "c.authored_at", "committed_at": "c.committed_at"}
NAMES = tuple(_VIEWS)


def create_views(connection: Connection) -> None:
    """Create every view on connection's database."""
    sqlite = connection.dialect.name == "sqlite"
    times = {name: f"datetime({column})" if sqlite else column
             for name, column in _TIMES.items()}
    for name, body in _VIEWS.items():
        connection.execute(text(f"CREATE VIEW {name} AS{body.format(**times)}"))


def drop_views(connection: Connection) -> None:
    """Drop every view (downgrade)."""
    for name in reversed(NAMES):
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
