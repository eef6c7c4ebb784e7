"""A query's rows straight from the database driver, for the one read that visits every event of
a day: SQLAlchemy's result rows and type processing cost more per row than the delivery's whole
visit of that row, so the statement is compiled by SQLAlchemy (the same query on both databases)
and its rows fetched from the driver's own cursor as plain tuples.

`occurred_at` comes back as a UTC datetime on both: SQLite stores it as SQLAlchemy's ISO text,
PostgreSQL's driver returns it with its offset.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select

_from_text = datetime.fromisoformat
_UTC_OFFSET = "+00:00"


def driver_rows(
    engine: Engine, query: Select[Any], chunk_rows: int, instant_at: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of `query` in parts of `chunk_rows`, the column at `instant_at` a UTC datetime."""
    dialect = engine.dialect
    compiled = query.compile(dialect=dialect)
    values = compiled.construct_params()
    processed: dict[str, Any] = {}
    for name, value in values.items():
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        processed[name] = value if process is None else process(value)
    postgres = dialect.name == "postgresql"
    parameters: Any = (
        processed if postgres else tuple(processed[name] for name in compiled.positiontup or ())
    )
    with engine.connect() as connection:
        driver = connection.connection.dbapi_connection
        assert driver is not None
        # A named cursor streams on PostgreSQL instead of loading the whole day at once.
        cursor = driver.cursor(f"rows_{uuid.uuid4().hex}") if postgres else driver.cursor()
        try:
            cursor.execute(str(compiled), parameters)

            def next_part() -> list[tuple[Any, ...]]:
                rows = cursor.fetchmany(chunk_rows)
                if postgres:
                    return [
                        (*row[:instant_at], row[instant_at].astimezone(UTC), *row[instant_at + 1 :])
                        for row in rows
                    ]
                # The stored text is UTC without an offset: parsed with one, the instant
                # comes out aware in one call (`replace(tzinfo=...)` cost five times the
                # parse).
                return [
                    (
                        *row[:instant_at],
                        _from_text(row[instant_at] + _UTC_OFFSET),
                        *row[instant_at + 1 :],
                    )
                    for row in rows
                ]

            # Parts are handed on without a name here: a part held by this frame while the
            # caller works would keep its rows alive, in memory and in every collector pass.
            yield from iter(next_part, [])
        finally:
            cursor.close()
