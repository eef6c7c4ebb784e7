"""The ledger's hot statements, written per database so that a chunk's or a request's worth of
events costs one round trip and no per-row SQL compilation.

Recording runs once per request over its events (claims, once per chunk, are in `claims.py`). A
generic statement through the SQL compiler costs more than the sending itself, so SQLite gets one
`INSERT ... SELECT` over `json_each` of the rows as one JSON text (made by one `orjson` call: one
statement step, where an `executemany` stepped, and handed the GIL back and forth, once per row;
`json_extract` rather than `->>`, which SQLite before 3.38 lacks) and PostgreSQL one statement over
`unnest` arrays (one round trip).
"""

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from nami_pipelines.delivery.claims import held_test
from nami_pipelines.delivery.ledger_tables import NO_USER, delivery_ledger

_OUTCOME_UPDATE = (
    "ON CONFLICT (integration, partition_date, nami_user_id, event_id) DO UPDATE SET "
    "status = excluded.status, "
    "reason = excluded.reason, attempts = delivery_ledger.attempts + excluded.attempts, "
    "first_attempt_at = coalesce(delivery_ledger.first_attempt_at, excluded.first_attempt_at), "
    "last_attempt_at = excluded.last_attempt_at, resolved_at = excluded.resolved_at"
)
_SQLITE_WRITE_OUTCOMES = (
    "INSERT INTO delivery_ledger (integration, event_id, nami_user_id, partition_date, status, "
    "reason, attempts, first_attempt_at, last_attempt_at, resolved_at) "
    "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?, ?, ?, ?, ?, ?, ? "
    "FROM json_each(?) WHERE true " + _OUTCOME_UPDATE
)
_POSTGRES_WRITE_OUTCOMES = (
    "INSERT INTO delivery_ledger (integration, event_id, nami_user_id, partition_date, status, "
    "reason, attempts, first_attempt_at, last_attempt_at, resolved_at) "
    "SELECT %(integration)s, t.event_id, t.nami_user_id, %(day)s, %(status)s, %(reason)s, "
    "%(attempts)s, %(now)s, %(now)s, %(resolved)s "
    "FROM unnest(%(event_ids)s::varchar[], %(users)s::varchar[]) AS t(event_id, nami_user_id) "
    + _OUTCOME_UPDATE
)
_SQLITE_UPSERT_ATTRIBUTES = (
    "INSERT INTO delivery_attribute_state (integration, nami_user_id, attributes, sent_at) "
    "SELECT ?, key, value, ? FROM json_each(?) WHERE true "
    "ON CONFLICT (integration, nami_user_id) DO UPDATE SET "
    "attributes = excluded.attributes, sent_at = excluded.sent_at"
)
_POSTGRES_UPSERT_ATTRIBUTES = (
    "INSERT INTO delivery_attribute_state (integration, nami_user_id, attributes, sent_at) "
    "SELECT %(integration)s, t.nami_user_id, t.attributes, %(now)s "
    "FROM unnest(%(users)s::varchar[], %(attributes)s::text[]) AS t(nami_user_id, attributes) "
    "ON CONFLICT (integration, nami_user_id) DO UPDATE SET "
    "attributes = excluded.attributes, sent_at = excluded.sent_at"
)

# The attributes last sent to some users: the users as one JSON array (SQLite) or one array
# parameter (PostgreSQL), so a chunk's ten thousand users are one statement that needs no
# compiling, where an IN list was compiled a thousand parameters at a time.
_SQLITE_LAST_SENT = (
    "SELECT nami_user_id, attributes FROM delivery_attribute_state "
    "WHERE integration = ? AND nami_user_id IN (SELECT value FROM json_each(?))"
)
_POSTGRES_LAST_SENT = (
    "SELECT nami_user_id, attributes FROM delivery_attribute_state "
    "WHERE integration = %(integration)s AND nami_user_id = ANY(%(users)s::varchar[])"
)


class LedgerStatements:
    """The bulk writes of `DeliveryLedger` for the engine's database, each one statement (one
    `executemany` on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._postgres = dialect.name == "postgresql"
        columns = delivery_ledger.c
        # SQLite stores datetimes and dates as SQLAlchemy writes them: the same text here, so
        # reads and comparisons through SQLAlchemy see the same values.
        instant = columns.resolved_at.type.dialect_impl(dialect).bind_processor(dialect)
        day = columns.partition_date.type.dialect_impl(dialect).bind_processor(dialect)
        self._instant: Callable[[Any], Any] = instant or _unchanged
        self._day: Callable[[Any], Any] = day or _unchanged
        self._held = threading.local()

    def _held_test(
        self, connection: Connection, integration: str, day: date, worker: str
    ) -> Callable[[str], bool]:
        """`held_test`, read once per transaction: the ledger writer commits a hundred
        requests' outcomes at once, and within one transaction the leases cannot change (the
        write lock on SQLite, the share lock on PostgreSQL), so one read answers them all."""
        transaction, asked = connection.get_transaction(), (integration, day, worker)
        cached = getattr(self._held, "last", None)
        if cached is not None and cached[0] is transaction and cached[1] == asked:
            return cached[2]
        held = held_test(connection, integration, day, worker)
        self._held.last = (transaction, asked, held)
        return held

    def forget_held(self) -> None:
        """After this thread ended leases: the next write reads them again."""
        self._held.last = None

    def write_outcomes(
        self,
        connection: Connection,
        integration: str,
        day: date,
        event_ids: Sequence[str],
        users: Sequence[str],
        *,
        worker: str,
        status: str,
        reason: str | None,
        attempts: int,
        now: datetime,
        resolved: bool,
    ) -> None:
        """Write the events' ledger rows (`users`: each one's user key) with `status`
        (resolved, or still pending with a reason) where `worker` still holds their users."""
        # Written only where `worker` still holds the user: a run whose lease ran out and was
        # taken over has no say any more.
        held = self._held_test(connection, integration, day, worker)
        kept = [
            (event_id, user) for event_id, user in zip(event_ids, users, strict=True) if held(user)
        ]
        if not kept:
            return
        if self._postgres:
            parameters: Any = {
                "integration": integration,
                "day": day,
                "status": status,
                "reason": reason,
                "attempts": attempts,
                "now": now,
                "resolved": now if resolved else None,
                "event_ids": [event_id for event_id, _ in kept],
                "users": [user for _, user in kept],
            }
            connection.exec_driver_sql(_POSTGRES_WRITE_OUTCOMES, parameters)
            return
        when, at = self._day(day), self._instant(now)
        closed = at if resolved else None
        parameters = (
            integration,
            when,
            status,
            reason,
            attempts,
            at,
            at,
            closed,
            orjson.dumps(kept).decode(),
        )
        connection.exec_driver_sql(_SQLITE_WRITE_OUTCOMES, parameters)

    def upsert_attributes(
        self,
        connection: Connection,
        integration: str,
        sent: Mapping[str, Mapping[str, Any]],
        now: datetime,
    ) -> None:
        """Store each user's attributes (as JSON, keys sorted) as what their profile now holds."""
        if self._postgres:
            parameters: Any = {
                "integration": integration,
                "now": now,
                "users": list(sent),
                "attributes": [
                    orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS).decode()
                    for attributes in sent.values()
                ],
            }
            connection.exec_driver_sql(_POSTGRES_UPSERT_ATTRIBUTES, parameters)
            return
        # One JSON object of user -> attributes: SQLite stores each value's JSON text as is.
        users = orjson.dumps(sent, option=orjson.OPT_SORT_KEYS).decode()
        connection.exec_driver_sql(
            _SQLITE_UPSERT_ATTRIBUTES, (integration, self._instant(now), users)
        )

    def last_sent_attributes(
        self, connection: Connection, integration: str, users: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """What each of the users' profiles holds, as this integration last sent it (users
        never sent anything are left out)."""
        if self._postgres:
            parameters: Any = {"integration": integration, "users": list(users)}
            rows = connection.exec_driver_sql(_POSTGRES_LAST_SENT, parameters)
        else:
            rows = connection.exec_driver_sql(
                _SQLITE_LAST_SENT, (integration, orjson.dumps(list(users)).decode())
            )
        loads = orjson.loads
        return {user: loads(text) for user, text in rows}


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite it takes the write lock at its start (BEGIN IMMEDIATE),
    so a statement that reads before it writes (the lease check) cannot have its snapshot made
    stale by another writer's commit, and the lease it read holds until the commit."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection


def user_key(user: str | None) -> str:
    """The claim key of a user (the events without one share a key)."""
    return NO_USER if user is None else user


def _unchanged(value: Any) -> Any:
    return value
