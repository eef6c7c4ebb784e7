"""The event database's engine: SQLite tuned for a loader, a receiver and the sensor at once,
PostgreSQL with a bounded connect, and the one schema change older databases need."""

import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text

from nami_pipelines.events.tables import nami_events_quarantine

_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()
# A forked child's inherited pools: kept referenced and never used, so no connection of the
# parent's is closed from the child (freeing a PostgreSQL connection sends its server a
# goodbye on the socket the parent still uses).
_INHERITED_POOLS: list[Any] = []


def _fresh_pools_in_child() -> None:
    """After a fork (delivery's worker processes), each engine starts a pool of its own, as
    SQLAlchemy's `dispose(close=False)` does, but the parent's connections stay referenced."""
    for engine in list(_ENGINES):
        _INHERITED_POOLS.append(engine.pool)
        engine.pool = engine.pool.recreate()


os.register_at_fork(after_in_child=_fresh_pools_in_child)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the sensor read while a loader writes; the busy timeout makes writers queue."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def create_store_engine(url: str) -> Engine:
    """An engine for the URL, with the SQLite folder created and SQLite tuned for concurrency."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _tune_sqlite)
    else:
        # A database host that accepts no connection must fail a request (a 503 at the
        # receiver, a failed step in a run), not hang it: a bounded connect unless the URL
        # sets its own.
        options = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": 10}
        engine = create_engine(url, pool_pre_ping=True, connect_args=options)
    _ENGINES.add(engine)
    return engine


def add_quarantine_content_key(engine: Engine) -> None:
    """Databases made before quarantined lines were keyed get the key column (older rows keep a
    null key: they stay, and are not matched against)."""
    if "content_key" in {c["name"] for c in inspect(engine).get_columns("nami_events_quarantine")}:
        return
    with engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE nami_events_quarantine ADD COLUMN content_key VARCHAR(64)")
        )
        for index in nami_events_quarantine.indexes:
            index.create(connection)
