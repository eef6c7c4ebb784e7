"""The delivery ledger: per (integration, event) what became of it, and per (integration, user)
the attributes last sent. It lives in the event database, so it is the single point of truth for
every worker on every machine.

Claiming is how "sent once" survives concurrency: a worker inserts the events it wants to send as
`pending` and leased to itself (ignoring rows that already exist), then, only if some existed,
takes a lease on the pending ones that nobody else holds. The lease is one conditional UPDATE, atomic on SQLite (one writer) and on PostgreSQL (row
locks, and the WHERE is re-checked after a concurrent commit), so two workers never hold the same
event. A worker that dies leaves its lease to expire; the events are then claimed again and resent
with the same ids, which the APIs deduplicate.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Engine, and_, func, or_, select, update

from nami_pipelines.delivery.ledger_statements import LedgerStatements
from nami_pipelines.delivery.ledger_tables import (
    PENDING,
    delivery_attribute_state,
    delivery_ledger,
    metadata,
)
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, OutcomeGroup
from nami_pipelines.settings import delivery_lease_seconds

__all__ = ["PENDING", "Candidate", "DeliveryLedger", "delivery_attribute_state", "delivery_ledger"]

OUTCOMES = (ACCEPTED, REJECTED, SKIPPED)
_IDS_PER_STATEMENT = 1_000
_ROWS_PER_BULK_STATEMENT = 10_000
_REASON_MAX = 2_000


class Candidate(NamedTuple):
    """An event selected for an integration, before it is claimed (a tuple: one per event)."""

    event_id: str
    nami_user_id: str | None
    partition_date: date


def _chunks(items: Sequence[Any], size: int = _IDS_PER_STATEMENT) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(UTC)


class DeliveryLedger:
    """Ledger operations; every write is one bulk statement per chunk, never one per event."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)
        self._statements = LedgerStatements(engine)

    def claim(
        self,
        integration: str,
        candidates: Sequence[Candidate],
        *,
        worker: str,
        lease: timedelta | None = None,
        resend: bool = False,
    ) -> list[str]:
        """Register candidates and lease the ones this worker may send now.

        Accepted, rejected and skipped events are never returned unless `resend` asks for them
        explicitly; events leased by a live worker are left to it.
        """
        if not candidates:
            return []
        now = _now()
        lease = lease or timedelta(seconds=delivery_lease_seconds())
        rows = list({candidate[0]: candidate for candidate in candidates}.values())
        ids = [row[0] for row in rows]
        table = delivery_ledger
        with self.engine.begin() as connection:
            inserted = sum(
                self._statements.insert_claimed(
                    connection, integration, chunk, worker=worker, expires=now + lease
                )
                for chunk in _chunks(rows, _ROWS_PER_BULK_STATEMENT)
            )
            if inserted == len(rows):
                return ids  # all new (the usual first send): inserted already leased to us
            for chunk in _chunks(ids):
                mine = and_(table.c.integration == integration, table.c.event_id.in_(chunk))
                if resend:
                    connection.execute(
                        update(table)
                        .where(mine, table.c.status.in_(OUTCOMES))
                        .values(status=PENDING, reason="re-send requested", resolved_at=None)
                    )
                connection.execute(
                    update(table)
                    .where(
                        mine,
                        table.c.status == PENDING,
                        or_(table.c.claimed_by.is_(None), table.c.claim_expires_at < now),
                    )
                    .values(claimed_by=worker, claim_expires_at=now + lease)
                )
        claimed: list[str] = []
        with self.engine.connect() as connection:
            for chunk in _chunks(ids):
                query = select(table.c.event_id).where(
                    table.c.integration == integration,
                    table.c.event_id.in_(chunk),
                    table.c.status == PENDING,
                    table.c.claimed_by == worker,
                )
                claimed.extend(connection.execute(query).scalars())
        return claimed

    def record(
        self,
        integration: str,
        groups: Sequence[OutcomeGroup],
        *,
        worker: str,
        attempts: int = 1,
    ) -> None:
        """Store outcomes as responses arrive; grouped so a request costs a statement or two."""
        if not groups:
            return
        now = _now()
        grouped: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for status, reason, event_ids in groups:
            reason = None if reason is None else reason[:_REASON_MAX]
            grouped[(status, reason)].extend(event_ids)
        with self.engine.begin() as connection:
            for (status, reason), event_ids in grouped.items():
                for chunk in _chunks(event_ids, _ROWS_PER_BULK_STATEMENT):
                    self._statements.resolve(
                        connection,
                        integration,
                        chunk,
                        worker=worker,
                        status=status,
                        reason=reason,
                        attempts=attempts,
                        now=now,
                    )

    def release(
        self, integration: str, event_ids: Sequence[str], *, worker: str, reason: str, attempts: int
    ) -> None:
        """Give up a lease without an outcome (retries exhausted): the events stay pending."""
        now = _now()
        table = delivery_ledger
        with self.engine.begin() as connection:
            for chunk in _chunks(list(event_ids)):
                connection.execute(
                    update(table)
                    .where(
                        table.c.integration == integration,
                        table.c.event_id.in_(chunk),
                        table.c.claimed_by == worker,
                    )
                    .values(
                        reason=reason[:_REASON_MAX],
                        attempts=table.c.attempts + attempts,
                        first_attempt_at=func.coalesce(table.c.first_attempt_at, now),
                        last_attempt_at=now,
                        claimed_by=None,
                        claim_expires_at=None,
                    )
                )

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
        """Ledger rows of an integration (for tests, the CLI and inspection)."""
        table = delivery_ledger
        query = select(table).where(table.c.integration == integration)
        rows: list[dict] = []
        with self.engine.connect() as connection:
            if event_ids is None:
                rows.extend(dict(row) for row in connection.execute(query).mappings())
            else:
                for chunk in _chunks(list(event_ids)):
                    selected = query.where(table.c.event_id.in_(chunk))
                    rows.extend(dict(row) for row in connection.execute(selected).mappings())
        return rows

    def last_sent_attributes(self, integration: str, users: Sequence[str]) -> dict[str, dict]:
        table = delivery_attribute_state
        found: dict[str, dict] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(list(users)):
                query = select(table.c.nami_user_id, table.c.attributes).where(
                    table.c.integration == integration, table.c.nami_user_id.in_(chunk)
                )
                for user, text in connection.execute(query):
                    found[user] = orjson.loads(text)
        return found

    def remember_sent_attributes(self, integration: str, sent: dict[str, dict]) -> None:
        """Record what each user's profile now holds at the destination."""
        if not sent:
            return
        rows = [
            (user, orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS).decode())
            for user, attributes in sent.items()
        ]
        now = _now()
        with self.engine.begin() as connection:
            for chunk in _chunks(rows, _ROWS_PER_BULK_STATEMENT):
                self._statements.upsert_attributes(connection, integration, chunk, now)
