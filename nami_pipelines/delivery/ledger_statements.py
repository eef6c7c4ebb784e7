"""The ledger's hot statements, written per database so that a chunk's or a request's worth of
events costs one round trip and no per-row SQL compilation.

Claiming runs once per chunk over its users, recording once per request over its events. A
generic statement through the SQL compiler costs more than the sending itself, so SQLite gets a
prepared statement run by `executemany` (a loop in C, one B-tree lookup per row) and PostgreSQL
one statement over `unnest` arrays (one round trip).
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from nami_pipelines.delivery.ledger_tables import NO_USER, delivery_ledger

# A claim takes users nobody holds, or whose holder's lease ran out (a dead run), or that this
# worker holds already.
_SQLITE_CLAIM_USERS = (
    "INSERT INTO delivery_claims (integration, partition_date, nami_user_id, claimed_by, "
    "claim_expires_at) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (integration, partition_date, nami_user_id) DO UPDATE SET "
    "claimed_by = excluded.claimed_by, claim_expires_at = excluded.claim_expires_at "
    "WHERE delivery_claims.claim_expires_at < ?6 OR delivery_claims.claimed_by = ?4"
)
_SQLITE_USERS_HELD = (
    "SELECT nami_user_id FROM delivery_claims WHERE integration = ? AND partition_date = ? "
    "AND claimed_by = ? AND nami_user_id >= ? AND nami_user_id <= ?"
)
_POSTGRES_CLAIM_USERS = (
    "INSERT INTO delivery_claims (integration, partition_date, nami_user_id, claimed_by, "
    "claim_expires_at) "
    "SELECT %(integration)s, %(day)s, t.nami_user_id, %(worker)s, %(expires)s "
    "FROM unnest(%(users)s::varchar[]) AS t(nami_user_id) "
    "ON CONFLICT (integration, partition_date, nami_user_id) DO UPDATE SET "
    "claimed_by = excluded.claimed_by, claim_expires_at = excluded.claim_expires_at "
    "WHERE delivery_claims.claim_expires_at < %(now)s "
    "OR delivery_claims.claimed_by = %(worker)s "
    "RETURNING nami_user_id"
)
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
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " + _OUTCOME_UPDATE
)
_POSTGRES_WRITE_OUTCOMES = (
    "INSERT INTO delivery_ledger (integration, event_id, nami_user_id, partition_date, status, "
    "reason, attempts, first_attempt_at, last_attempt_at, resolved_at) "
    "SELECT %(integration)s, t.event_id, t.nami_user_id, %(day)s, %(status)s, %(reason)s, "
    "%(attempts)s, %(now)s, %(now)s, %(resolved)s "
    "FROM unnest(%(event_ids)s::varchar[], %(users)s::varchar[]) AS t(event_id, nami_user_id) "
    + _OUTCOME_UPDATE
)
# The users a worker holds in a range, their claims locked until the write commits (the writer
# holds SQLite's write lock from the start of its transaction, see `writing`).
_POSTGRES_USERS_HELD = (
    "SELECT nami_user_id FROM delivery_claims WHERE integration = %(integration)s "
    "AND partition_date = %(day)s AND claimed_by = %(worker)s "
    "AND nami_user_id BETWEEN %(first)s AND %(last)s FOR SHARE"
)
_SQLITE_END_CLAIMS = (
    "DELETE FROM delivery_claims WHERE integration = ? AND partition_date = ? "
    "AND nami_user_id = ? AND claimed_by = ?"
)
_POSTGRES_END_CLAIMS = (
    "DELETE FROM delivery_claims WHERE integration = %(integration)s "
    "AND partition_date = %(day)s AND claimed_by = %(worker)s "
    "AND nami_user_id = ANY(%(users)s::varchar[])"
)
_SQLITE_UPSERT_ATTRIBUTES = (
    "INSERT INTO delivery_attribute_state (integration, nami_user_id, attributes, sent_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (integration, nami_user_id) DO UPDATE SET "
    "attributes = excluded.attributes, sent_at = excluded.sent_at"
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
        instant = columns.resolved_at.type.dialect_impl(dialect).bind_processor(dialect)
        day = columns.partition_date.type.dialect_impl(dialect).bind_processor(dialect)
        self._instant: Callable[[Any], Any] = instant or _unchanged
        self._day: Callable[[Any], Any] = day or _unchanged

    def claim_users(
        self,
        connection: Connection,
        integration: str,
        day: date,
        users: Sequence[str],
        *,
        worker: str,
        now: datetime,
        expires: datetime,
    ) -> set[str]:
        """Lease the (sorted) user keys of `day` to `worker` where nobody else holds them;
        returns the ones it now holds."""
        if self._postgres:
            parameters: Any = {
                "integration": integration,
                "day": day,
                "worker": worker,
                "now": now,
                "expires": expires,
                "users": list(users),
            }
            result = connection.exec_driver_sql(_POSTGRES_CLAIM_USERS, parameters)
            return set(result.scalars())
        when, until, at = self._day(day), self._instant(expires), self._instant(now)
        parameters = [(integration, when, user, worker, until, at) for user in users]
        taken = connection.exec_driver_sql(_SQLITE_CLAIM_USERS, parameters).rowcount
        if taken == len(users):
            return set(users)
        return self.users_held(connection, integration, day, worker, users) & set(users)

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
        held = self.users_held(connection, integration, day, worker, users)
        kept = [
            (event_id, user)
            for event_id, user in zip(event_ids, users, strict=True)
            if user in held
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
        parameters = [
            (integration, event_id, user, when, status, reason, attempts, at, at, closed)
            for event_id, user in kept
        ]
        connection.exec_driver_sql(_SQLITE_WRITE_OUTCOMES, parameters)

    def users_held(
        self, connection: Connection, integration: str, day: date, worker: str, users: Sequence[str]
    ) -> set[str]:
        """The user keys in the range of `users` that `worker` holds. An outcome (or a reason to stay
        pending) is written only by the worker holding the event's user, as a run whose lease
        ran out and was taken over has no say any more. One range read per write."""
        first, last = min(users), max(users)
        if self._postgres:
            parameters: Any = {
                "integration": integration,
                "day": day,
                "worker": worker,
                "first": first,
                "last": last,
            }
            held = connection.exec_driver_sql(_POSTGRES_USERS_HELD, parameters)
        else:
            held = connection.exec_driver_sql(
                _SQLITE_USERS_HELD, (integration, self._day(day), worker, first, last)
            )
        return set(held.scalars())

    def end_claims(
        self, connection: Connection, integration: str, day: date, users: Sequence[str], worker: str
    ) -> None:
        """Give up `worker`'s leases on the user keys: their events all have their rows."""
        if self._postgres:
            parameters: Any = {
                "integration": integration,
                "day": day,
                "worker": worker,
                "users": list(users),
            }
            connection.exec_driver_sql(_POSTGRES_END_CLAIMS, parameters)
            return
        when = self._day(day)
        parameters = [(integration, when, user, worker) for user in users]
        connection.exec_driver_sql(_SQLITE_END_CLAIMS, parameters)

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
