"""bulk.executemany stands in for Connection.execute(statement, rows): same rows stored, on
every back end, for every column type the schema uses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy
from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Integer, MetaData, String, Table

from reconciler.registry import bulk, db

NAMES = ("id", "n", "big", "flag", "at", "doc", "note")


def _table(name: str) -> Table:
    return Table(name, MetaData(), Column("id", String(64), primary_key=True),
                 Column("n", Integer), Column("big", BigInteger), Column("flag", Boolean),
                 Column("at", DateTime()), Column("doc", JSON), Column("note", String(255)))
ROWS = [
    {"id": "a", "n": 1, "big": 2**62, "flag": True, "at": datetime(2024, 5, 14, 13, 0, 1),
     "doc": {"auc": 0.93, "nested": [1, {"x": None}]}, "note": "é \\ ' \" %s ?"},
    {"id": "b", "n": None, "big": None, "flag": False, "at": datetime(1000, 1, 1),
     "doc": None, "note": None},
    {"id": "c"},  # missing values are NULL
]


@pytest.fixture
def engine(db_url: str) -> Iterator[sqlalchemy.Engine]:
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    yield engine
    engine.dispose()


def test_executemany_stores_what_execute_stores(engine: sqlalchemy.Engine) -> None:
    tables = [_table(name) for name in ("by_bulk", "by_core")]
    stored = []
    for table in tables:
        table.drop(engine, checkfirst=True)
        table.create(engine)
    try:
        with engine.begin() as connection:
            bulk.executemany(connection, ("test-insert", tables[0].name),
                             lambda: tables[0].insert(), [dict(row) for row in ROWS])
            connection.execute(tables[1].insert(), [
                {name: row.get(name) for name in NAMES} for row in ROWS])
        with engine.connect() as connection:
            for table in tables:
                stored.append(connection.execute(
                    sqlalchemy.select(table).order_by(table.c.id)).all())
    finally:
        for table in tables:
            table.drop(engine, checkfirst=True)
    assert stored[0] == stored[1]
    assert stored[0][0].doc == ROWS[0]["doc"] and stored[0][2].n is None


def test_a_statement_with_values_of_its_own_is_refused(engine: sqlalchemy.Engine) -> None:
    table = Table("refused", MetaData(), Column("id", String(8), primary_key=True))
    with engine.connect() as connection, pytest.raises(ValueError, match="binds values"):
        bulk.executemany(connection, ("refused",), lambda: table.insert().values(id="x"),
                         [{"id": "y"}])
