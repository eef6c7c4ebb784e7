"""The ledger's tables, in the event database beside `nami_events`: per (integration, event) what
became of it, per (integration, day, span of users) which run is sending those users' events
now, and per (integration, user) the attributes last sent.

An event gets its ledger row once, when its outcome is known (or when a run leaves it pending
with a reason); while it is being sent, the lease on a span of users that holds it is what keeps
other runs off it (a user's events are always sent together by one run: their attributes as of
each event depend on the ones before).

The ledger's key is (integration, day, user, event), in that order, not (integration, event):
a run writes its outcomes user by user in id order, so each write lands beside the previous one
in the key's B-tree instead of on a random page (event ids are random), which made the write the
costliest step of delivery. The same key answers a claim's "what do these users' events have
already" as one range read, and a day's counts as a prefix.
"""

from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    exists,
    func,
    inspect,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from nami_pipelines.events.tables import nami_events

PENDING = "pending"
# The user key of the events without a user: they are claimed and kept together, as one "user".
NO_USER = ""

metadata = MetaData()

delivery_ledger = Table(
    "delivery_ledger",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("partition_date", Date, primary_key=True),
    Column("nami_user_id", String(128), primary_key=True),  # NO_USER for none
    Column("event_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    # On SQLite the rows live in the key's B-tree itself: one tree to write, not two.
    sqlite_with_rowid=False,
)

# A run's lease on a span of user keys of one day (see `delivery/claims.py`).
delivery_claims = Table(
    "delivery_claims",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("partition_date", Date, primary_key=True),
    Column("claimed_by", String(128), primary_key=True),
    Column("first_user", String(128), primary_key=True),
    Column("last_user", String(128), nullable=False),
    Column("claim_expires_at", DateTime(timezone=True), nullable=False),
)

delivery_attribute_state = Table(
    "delivery_attribute_state",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("nami_user_id", String(128), primary_key=True),
    Column("attributes", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)


class utc_day(FunctionElement[Any]):
    """The UTC date of a stored instant: an event's partition day, in SQL."""

    type = Date()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"  # SQLite keeps UTC ISO text


@compiles(utc_day, "postgresql")
def _utc_day_postgres(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC')::date"


def settled(integration: str) -> ColumnElement[bool]:
    """For a row of `nami_events`: the integration has an outcome for it (one key lookup)."""
    ledger = delivery_ledger.c
    return exists().where(
        and_(
            ledger.integration == integration,
            ledger.partition_date == utc_day(nami_events.c.occurred_at),
            ledger.nami_user_id == func.coalesce(nami_events.c.nami_user_id, NO_USER),
            ledger.event_id == nami_events.c.event_id,
            ledger.status != PENDING,
        )
    )


_OLD_KEY = ["integration", "event_id"]
_COLUMNS = (
    "integration, partition_date, nami_user_id, event_id, status, reason, attempts, "
    "first_attempt_at, last_attempt_at, resolved_at"
)


def move_ledger_to_user_key(engine: Engine) -> None:
    """A ledger made before the (integration, day, user, event) key keeps its rows: they are
    copied into a table with the new key, which then takes the old one's name."""
    inspector = inspect(engine)
    if "delivery_ledger" not in inspector.get_table_names():
        return
    if inspector.get_pk_constraint("delivery_ledger")["constrained_columns"] != _OLD_KEY:
        return
    interim = delivery_ledger.to_metadata(MetaData(), name="delivery_ledger_next")
    with engine.begin() as connection:
        interim.create(connection)
        connection.execute(
            text(
                f"INSERT INTO delivery_ledger_next ({_COLUMNS}) SELECT integration, "
                "partition_date, coalesce(nami_user_id, ''), event_id, status, reason, attempts, "
                "first_attempt_at, last_attempt_at, resolved_at FROM delivery_ledger"
            )
        )
        connection.execute(text("DROP TABLE delivery_ledger"))
        connection.execute(text("ALTER TABLE delivery_ledger_next RENAME TO delivery_ledger"))
