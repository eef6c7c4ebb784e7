"""The delivery ledger: per (integration, event) what became of it, and per (integration, user)
the attributes last sent. It lives in the event database, so it is the single point of truth for
every worker on every machine.

Claiming is how "sent once" survives concurrency. A run leases the span of users of a chunk for
the day (`delivery_claims`, see `claims.py`), taking only users no other live lease covers, so
two workers never hold the same user. It then sends the events of the users it holds that have
no outcome yet. Each event's row is written once, with its outcome, by the worker still holding
its user; the lease ends when the chunk is done. A worker that dies leaves its leases to expire;
their events are then claimed again and resent with the same ids, which the APIs deduplicate.
"""

from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select

from nami_pipelines.delivery.claims import end_leases, lease_users
from nami_pipelines.delivery.ledger_statements import LedgerStatements, user_key, writing
from nami_pipelines.delivery.ledger_tables import (
    PENDING,
    delivery_attribute_state,
    delivery_claims,
    delivery_ledger,
    metadata,
    move_ledger_to_user_key,
)
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, OutcomeGroup
from nami_pipelines.settings import delivery_lease_seconds

__all__ = [
    "PENDING",
    "Claim",
    "DeliveryLedger",
    "delivery_attribute_state",
    "delivery_claims",
    "delivery_ledger",
]

OUTCOMES = (ACCEPTED, REJECTED, SKIPPED)
_IDS_PER_STATEMENT = 1_000
_ROWS_PER_BULK_STATEMENT = 10_000
_REASON_MAX = 2_000

# Per user (None: the events without one), the ids of their events in one day.
EventsByUser = Mapping[str | None, Sequence[str]]


class Claim(NamedTuple):
    """What one claim got: the events to send now, each with its user, and every user this
    worker now holds (also those with nothing left to send), whose leases it must end."""

    day: date
    events: dict[str, str | None]
    users: list[str | None]


def _chunks(items: Sequence[Any], size: int = _IDS_PER_STATEMENT) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(UTC)


def _settled(connection: Connection, integration: str, day: date, keys: Sequence[str]) -> set[str]:
    """Events with an outcome among those of the user keys (sorted) in `day`: one range read of
    the ledger's key, whatever the number of users."""
    if not keys:
        return set()
    ledger = delivery_ledger.c
    query = select(ledger.event_id).where(
        ledger.integration == integration,
        ledger.partition_date == day,
        ledger.nami_user_id.between(keys[0], keys[-1]),
        ledger.status != PENDING,
    )
    return set(connection.execute(query).scalars())


class DeliveryLedger:
    """Ledger operations; every write is one bulk statement per chunk, never one per event."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        move_ledger_to_user_key(engine)
        metadata.create_all(engine)
        self._statements = LedgerStatements(engine)

    def _transaction(self, connection: Connection | None) -> Any:
        """The ledger writer's transaction when given one (it commits a group of writes at
        once), else one of our own."""
        return nullcontext(connection) if connection is not None else writing(self.engine)

    def claim(
        self,
        integration: str,
        day: date,
        events: EventsByUser,
        *,
        worker: str,
        lease: timedelta | None = None,
        resend: bool = False,
    ) -> Claim:
        """Lease the users of `events` in `day` to `worker`, where no live worker holds them,
        and return the events to send now, each with its user.

        Accepted, rejected and skipped events are never returned unless `resend` asks for them
        explicitly; users leased by a live worker are left to it.
        """
        if not events:
            return Claim(day, {}, [])
        now = _now()
        lease = lease or timedelta(seconds=delivery_lease_seconds())
        keys = sorted({user_key(user): user for user in events}.items())
        with writing(self.engine) as connection:
            held = lease_users(
                connection,
                integration,
                day,
                [key for key, _ in keys],
                worker=worker,
                now=now,
                expires=now + lease,
            )
            taken = set(held)
            users = [user for key, user in keys if key in taken]
            settled = set() if resend else _settled(connection, integration, day, held)
        to_send = {
            event_id: user for user in users for event_id in events[user] if event_id not in settled
        }
        return Claim(day, to_send, users)

    def settled_events(self, integration: str, day: date, users: Iterable[str | None]) -> set[str]:
        """Events of the users in `day` that have an outcome (what a run would not send)."""
        with self.engine.connect() as connection:
            keys = sorted({user_key(user) for user in users})
            return _settled(connection, integration, day, keys)

    def record(
        self,
        integration: str,
        day: date,
        groups: Sequence[OutcomeGroup],
        users: Mapping[str, str | None],
        *,
        worker: str,
        attempts: int = 1,
        connection: Connection | None = None,
    ) -> None:
        """Store outcomes as responses arrive (a group per status and reason, a statement per
        group); a group with status pending leaves its events pending with the reason."""
        if not groups:
            return
        now = _now()
        with self._transaction(connection) as connection:
            for status, reason, event_ids in groups:
                for part in _chunks(event_ids, _ROWS_PER_BULK_STATEMENT):
                    self._statements.write_outcomes(
                        connection,
                        integration,
                        day,
                        part,
                        [user_key(users.get(event_id)) for event_id in part],
                        worker=worker,
                        status=status,
                        reason=None if reason is None else reason[:_REASON_MAX],
                        attempts=attempts,
                        now=now,
                        resolved=status != PENDING,
                    )

    def release(
        self,
        integration: str,
        day: date,
        event_ids: Sequence[str],
        users: Mapping[str, str | None],
        *,
        worker: str,
        reason: str,
        attempts: int,
        connection: Connection | None = None,
    ) -> None:
        """Give up events without an outcome (retries exhausted, no rate yet): they stay
        pending with the reason, for a later run."""
        groups = [OutcomeGroup(PENDING, reason, event_ids)]
        self.record(
            integration, day, groups, users, worker=worker, attempts=attempts, connection=connection
        )

    def end_claims(
        self,
        integration: str,
        day: date,
        users: Iterable[str | None],
        *,
        worker: str,
        connection: Connection | None = None,
    ) -> None:
        """End `worker`'s leases on the users: every event of theirs it sent has its row."""
        keys = sorted({user_key(user) for user in users})
        if not keys:
            return
        with self._transaction(connection) as connection:
            end_leases(connection, integration, day, keys, worker)
            self._statements.forget_held()

    def status_counts(self, integration: str, partition_date: date) -> dict[str, int]:
        table = delivery_ledger
        query = (
            select(table.c.status, func.count())
            .where(table.c.integration == integration, table.c.partition_date == partition_date)
            .group_by(table.c.status)
        )
        with self.engine.connect() as connection:
            counts = dict(connection.execute(query).all())
        return {status: int(counts.get(status, 0)) for status in (PENDING, *OUTCOMES)}

    def entries(self, integration: str, event_ids: Sequence[str] | None = None) -> list[dict]:
        """Ledger rows of an integration (for tests, the CLI and inspection); an event without
        a user has `nami_user_id` None."""
        table = delivery_ledger
        query = select(table).where(table.c.integration == integration)
        rows: list[dict] = []
        with self.engine.connect() as connection:
            if event_ids is None:
                rows.extend(_entry(row) for row in connection.execute(query).mappings())
            else:
                for chunk in _chunks(list(event_ids)):
                    selected = query.where(table.c.event_id.in_(chunk))
                    rows.extend(_entry(row) for row in connection.execute(selected).mappings())
        return rows

    def last_sent_attributes(self, integration: str, users: Sequence[str]) -> dict[str, dict]:
        if not users:
            return {}
        with self.engine.connect() as connection:
            return self._statements.last_sent_attributes(connection, integration, users)

    def remember_sent_attributes(
        self, integration: str, sent: dict[str, dict], *, connection: Connection | None = None
    ) -> None:
        """Record what each user's profile now holds at the destination."""
        if not sent:
            return
        users = list(sent)
        now = _now()
        with self._transaction(connection) as connection:
            for chunk in _chunks(users, _ROWS_PER_BULK_STATEMENT):
                self._statements.upsert_attributes(
                    connection, integration, {user: sent[user] for user in chunk}, now
                )


def _entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "nami_user_id": row["nami_user_id"] or None}
