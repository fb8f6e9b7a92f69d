"""executemany without per-row ORM work: a statement is compiled once per dialect, and rows go
to the driver as plain tuples (or dicts), converted by the column types' own bind processors.

SQLAlchemy's `connection.execute(statement, rows)` re-derives every row's parameters through
its compiler (about 10 us a row); a backfill sends tens of thousands of rows, so this module
does that work once per statement shape and leaves only the type conversions per row.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable


class _Prepared(NamedTuple):
    sql: str
    names: tuple[str, ...]                    # parameter names, in the driver's order
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, bind processor)
    positional: bool


_PREPARED: weakref.WeakKeyDictionary[Dialect, dict[Hashable, _Prepared]] = (
    weakref.WeakKeyDictionary())


def executemany(connection: Connection, key: Hashable, build: Callable[[], Executable],
                rows: list[dict[str, Any]]) -> None:
    """Run the statement build() makes once for every row (a dict of its bind parameters;
    a missing one is NULL). key names the statement's shape: equal keys, equal statements."""
    if not rows:
        return
    dialect = connection.dialect
    cache = _PREPARED.setdefault(dialect, {})
    prepared = cache.get(key)
    if prepared is None:
        prepared = cache[key] = _prepare(dialect, build())
    values = [[row.get(name) for name in prepared.names] for row in rows]
    for position, convert in prepared.converters:
        for row_values in values:
            row_values[position] = convert(row_values[position])
    if prepared.positional:
        connection.exec_driver_sql(prepared.sql, [tuple(v) for v in values])
    else:
        connection.exec_driver_sql(prepared.sql, [dict(zip(prepared.names, v, strict=True))
                                                  for v in values])


def _prepare(dialect: Dialect, statement: Executable) -> _Prepared:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
    literal = [name for name in names if compiled.binds[name].value is not None]
    if literal:
        # The statement is cached by key alone: a value inside it would be reused for rows it
        # does not belong to. Every value must come from the rows (bindparam()).
        raise ValueError(f"statement binds values of its own: {', '.join(literal)}")
    converters = []
    for position, name in enumerate(names):
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            converters.append((position, processor))
    return _Prepared(str(compiled), names, tuple(converters), bool(compiled.positional))
