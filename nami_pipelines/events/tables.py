"""SQL tables of the event store (docs/input.md) and of its quarantine.

Kept in SQLAlchemy Core so the same definitions create the schema on SQLite and PostgreSQL.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

nami_events = Table(
    "nami_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(128), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("loaded_seq", BigInteger, nullable=False, unique=True),
    Column("app_id", String(128), nullable=False),
    Column("app_platform_id", String(128)),
    Column("platform_type", String(32)),
    Column("nami_user_id", String(128)),
    Column("external_id", String(512)),
    Column("device_id", String(128)),
    Column("environment", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_nami_events_occurred_at", "occurred_at"),
    Index("ix_nami_events_user", "nami_user_id", "occurred_at"),
)

# Where each column sits in a row read as a plain tuple (in the order of `nami_events.columns`).
ROW_POSITIONS = {column.name: index for index, column in enumerate(nami_events.columns)}

nami_events_quarantine = Table(
    "nami_events_quarantine",
    metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(1024), nullable=False),
    Column("line_number", BigInteger, nullable=False),
    Column("event_id", String(512)),
    Column("reason", Text, nullable=False),
    Column("raw_line", Text, nullable=False),
    Column("quarantined_at", DateTime(timezone=True), nullable=False),
    # A hash of where the line came from and what it said: the same bad line loaded again (or a
    # webhook Nami retries) is kept once.
    Column("content_key", String(64)),
    Index("ux_nami_events_quarantine_content_key", "content_key", unique=True),
)

# Events of types no destination takes (docs/input.md), by id so that retries count once.
nami_events_unsent = Table(
    "nami_events_unsent",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(128), nullable=False),
    Column("app_id", String(128), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# One row: the last `loaded_seq` handed out. Loaders update it first in their transaction, so its
# row lock serializes them and rows become visible in `loaded_seq` order. A sensor whose cursor
# is a `loaded_seq` can therefore never miss a row committed late with a smaller number.
nami_events_sequence = Table(
    "nami_events_sequence",
    metadata,
    Column("sequence_id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
)
