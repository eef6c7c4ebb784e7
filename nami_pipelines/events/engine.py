"""The event database's engine: SQLite tuned for a loader, a receiver and the sensor at once,
PostgreSQL with a bounded connect, and the one schema change older databases need."""

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text

from nami_pipelines.events.tables import nami_events_quarantine


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
        return engine
    # A database host that accepts no connection must fail a request (a 503 at the receiver,
    # a failed step in a run), not hang it: a bounded connect unless the URL sets its own.
    options = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": 10}
    return create_engine(url, pool_pre_ping=True, connect_args=options)


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
