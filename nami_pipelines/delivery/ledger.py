"""The delivery ledger: per (integration, event) what became of it, and per (integration, user)
the attributes last sent. It lives in the event database, so it is the single point of truth for
every worker on every machine.

Claiming is how "sent once" survives concurrency: a worker inserts the events it wants to send as
`pending` (ignoring rows that already exist), then takes a lease on pending rows that nobody else
holds. The lease is one conditional UPDATE, atomic on SQLite (one writer) and on PostgreSQL (row
locks, and the WHERE is re-checked after a concurrent commit), so two workers never hold the same
event. A worker that dies leaves its lease to expire; the events are then claimed again and resent
with the same ids, which the APIs deduplicate.
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, Outcome
from nami_pipelines.settings import delivery_lease_seconds

PENDING = "pending"
OUTCOMES = (ACCEPTED, REJECTED, SKIPPED)
_IDS_PER_STATEMENT = 1_000
_REASON_MAX = 2_000

metadata = MetaData()

delivery_ledger = Table(
    "delivery_ledger",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("nami_user_id", String(128)),
    Column("partition_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(128)),
    Column("claim_expires_at", DateTime(timezone=True)),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Index("ix_delivery_ledger_partition", "integration", "partition_date", "status"),
)

delivery_attribute_state = Table(
    "delivery_attribute_state",
    metadata,
    Column("integration", String(64), primary_key=True),
    Column("nami_user_id", String(128), primary_key=True),
    Column("attributes", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event selected for an integration, before it is claimed."""

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

    def _insert_ignoring_existing(self, table: Table) -> Any:
        return self._dialect.insert(table).on_conflict_do_nothing()

    @property
    def _dialect(self) -> Any:
        """The dialect module whose INSERT knows ON CONFLICT (both of ours do)."""
        return postgresql if self.engine.dialect.name == "postgresql" else sqlite

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
        ids = [candidate.event_id for candidate in candidates]
        table = delivery_ledger
        with self.engine.begin() as connection:
            connection.execute(
                self._insert_ignoring_existing(table),
                [
                    {
                        "integration": integration,
                        "event_id": candidate.event_id,
                        "nami_user_id": candidate.nami_user_id,
                        "partition_date": candidate.partition_date,
                        "status": PENDING,
                        "attempts": 0,
                    }
                    for candidate in candidates
                ],
            )
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
        self, integration: str, outcomes: Sequence[Outcome], *, worker: str, attempts: int = 1
    ) -> None:
        """Store outcomes as responses arrive; grouped so a request costs a statement or two."""
        if not outcomes:
            return
        now = _now()
        grouped: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for outcome in outcomes:
            reason = None if outcome.reason is None else outcome.reason[:_REASON_MAX]
            grouped[(outcome.status, reason)].append(outcome.event_id)
        table = delivery_ledger
        with self.engine.begin() as connection:
            for (status, reason), event_ids in grouped.items():
                for chunk in _chunks(event_ids):
                    connection.execute(
                        update(table)
                        .where(
                            table.c.integration == integration,
                            table.c.event_id.in_(chunk),
                            table.c.claimed_by == worker,
                        )
                        .values(
                            status=status,
                            reason=reason,
                            attempts=table.c.attempts + attempts,
                            first_attempt_at=func.coalesce(table.c.first_attempt_at, now),
                            last_attempt_at=now,
                            resolved_at=now,
                            claimed_by=None,
                            claim_expires_at=None,
                        )
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
                    found[user] = json.loads(text)
        return found

    def remember_sent_attributes(self, integration: str, sent: dict[str, dict]) -> None:
        """Record what each user's profile now holds at the destination."""
        if not sent:
            return
        now = _now()
        table = delivery_attribute_state
        statement = self._dialect.insert(table)
        upsert = statement.on_conflict_do_update(
            index_elements=[table.c.integration, table.c.nami_user_id],
            set_={
                "attributes": statement.excluded.attributes,
                "sent_at": statement.excluded.sent_at,
            },
        )
        rows = [
            {
                "integration": integration,
                "nami_user_id": user,
                "attributes": json.dumps(attributes, sort_keys=True),
                "sent_at": now,
            }
            for user, attributes in sent.items()
        ]
        with self.engine.begin() as connection:
            for chunk in _chunks(rows):
                connection.execute(upsert, list(chunk))
