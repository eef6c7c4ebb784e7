"""The ledger's hot statements, written per database so that a request's worth of events costs
one round trip and no per-row SQL compilation.

Claiming and recording run once per chunk and once per request, over thousands of event ids. A
generic `UPDATE ... WHERE event_id IN (...)` through the SQL compiler costs more than the
sending itself, so SQLite gets a prepared statement run by `executemany` (a loop in C, one
B-tree lookup per row) and PostgreSQL one statement over `unnest` arrays (one round trip).
"""

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from nami_pipelines.delivery.ledger_tables import delivery_ledger

_SQLITE_INSERT_CLAIMED = (
    "INSERT INTO delivery_ledger (integration, event_id, nami_user_id, partition_date, status, "
    "attempts, claimed_by, claim_expires_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_SQLITE_RESOLVE = (
    "UPDATE delivery_ledger SET status = ?, reason = ?, attempts = attempts + ?, "
    "first_attempt_at = coalesce(first_attempt_at, ?), last_attempt_at = ?, resolved_at = ?, "
    "claimed_by = NULL, claim_expires_at = NULL "
    "WHERE integration = ? AND event_id = ? AND claimed_by = ?"
)
_SQLITE_UPSERT_ATTRIBUTES = (
    "INSERT INTO delivery_attribute_state (integration, nami_user_id, attributes, sent_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (integration, nami_user_id) DO UPDATE SET "
    "attributes = excluded.attributes, sent_at = excluded.sent_at"
)
_POSTGRES_INSERT_CLAIMED = (
    "INSERT INTO delivery_ledger (integration, event_id, nami_user_id, partition_date, status, "
    "attempts, claimed_by, claim_expires_at) "
    "SELECT %(integration)s, t.event_id, t.nami_user_id, t.partition_date, 'pending', 0, "
    "%(worker)s, %(expires)s "
    "FROM unnest(%(event_ids)s::varchar[], %(users)s::varchar[], %(days)s::date[]) "
    "AS t(event_id, nami_user_id, partition_date) "
    "ON CONFLICT DO NOTHING"
)
_POSTGRES_RESOLVE = (
    "UPDATE delivery_ledger AS l SET status = %(status)s, reason = %(reason)s, "
    "attempts = l.attempts + %(attempts)s, "
    "first_attempt_at = coalesce(l.first_attempt_at, %(now)s), last_attempt_at = %(now)s, "
    "resolved_at = %(now)s, claimed_by = NULL, claim_expires_at = NULL "
    "FROM unnest(%(event_ids)s::varchar[]) AS t(event_id) "
    "WHERE l.integration = %(integration)s AND l.event_id = t.event_id "
    "AND l.claimed_by = %(worker)s"
)
_POSTGRES_UPSERT_ATTRIBUTES = (
    "INSERT INTO delivery_attribute_state (integration, nami_user_id, attributes, sent_at) "
    "SELECT %(integration)s, t.nami_user_id, t.attributes, %(now)s "
    "FROM unnest(%(users)s::varchar[], %(attributes)s::text[]) AS t(nami_user_id, attributes) "
    "ON CONFLICT (integration, nami_user_id) DO UPDATE SET "
    "attributes = excluded.attributes, sent_at = excluded.sent_at"
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
        instant = columns.claim_expires_at.type.dialect_impl(dialect).bind_processor(dialect)
        day = columns.partition_date.type.dialect_impl(dialect).bind_processor(dialect)
        self._instant: Callable[[Any], Any] = instant or _unchanged
        self._day: Callable[[Any], Any] = day or _unchanged

    def insert_claimed(
        self,
        connection: Connection,
        integration: str,
        rows: Sequence[tuple[str, str | None, date]],
        *,
        worker: str,
        expires: datetime,
    ) -> int:
        """Insert (event_id, nami_user_id, partition_date) rows as pending and leased to
        `worker`, leaving existing rows alone; returns how many were inserted."""
        if self._postgres:
            event_ids, users, days = (list(column) for column in zip(*rows, strict=True))
            parameters: Any = {
                "integration": integration,
                "worker": worker,
                "expires": expires,
                "event_ids": event_ids,
                "users": users,
                "days": days,
            }
            return connection.exec_driver_sql(_POSTGRES_INSERT_CLAIMED, parameters).rowcount
        until = self._instant(expires)
        parameters = [
            (integration, event_id, user, self._day(when), worker, until)
            for event_id, user, when in rows
        ]
        return connection.exec_driver_sql(_SQLITE_INSERT_CLAIMED, parameters).rowcount

    def resolve(
        self,
        connection: Connection,
        integration: str,
        event_ids: Sequence[str],
        *,
        worker: str,
        status: str,
        reason: str | None,
        attempts: int,
        now: datetime,
    ) -> None:
        """Give events this worker holds an outcome and end its lease on them."""
        if self._postgres:
            parameters: Any = {
                "integration": integration,
                "worker": worker,
                "status": status,
                "reason": reason,
                "attempts": attempts,
                "now": now,
                "event_ids": list(event_ids),
            }
            connection.exec_driver_sql(_POSTGRES_RESOLVE, parameters)
            return
        at = self._instant(now)
        parameters = [
            (status, reason, attempts, at, at, at, integration, event_id, worker)
            for event_id in event_ids
        ]
        connection.exec_driver_sql(_SQLITE_RESOLVE, parameters)

    def upsert_attributes(
        self,
        connection: Connection,
        integration: str,
        sent: Sequence[tuple[str, str]],
        now: datetime,
    ) -> None:
        """Store (nami_user_id, attributes JSON) as what each profile now holds."""
        if self._postgres:
            parameters: Any = {
                "integration": integration,
                "now": now,
                "users": [user for user, _ in sent],
                "attributes": [text for _, text in sent],
            }
            connection.exec_driver_sql(_POSTGRES_UPSERT_ATTRIBUTES, parameters)
            return
        at = self._instant(now)
        parameters = [(integration, user, text, at) for user, text in sent]
        connection.exec_driver_sql(_SQLITE_UPSERT_ATTRIBUTES, parameters)


def _unchanged(value: Any) -> Any:
    return value
