"""Where deliveries stand, per integration, from the ledger and the event table: what
`nami-pipelines status` prints and what `backfill` and `demo` check before they exit.

"Pending" means selected and not settled: no outcome in the ledger yet (never attempted, or
left pending when retries ran out), whatever the reason. Nothing here sends or writes.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.claims import in_live_span
from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger, delivery_ledger
from nami_pipelines.delivery.ledger_tables import NO_USER, settled
from nami_pipelines.delivery.reasons import top_reasons
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED
from nami_pipelines.destinations.selection import event_filter
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events
from nami_pipelines.snapshots.daily import day_end

TOP_REASONS = 5


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """The oldest selected event with no outcome yet."""

    event_id: str
    occurred_at: datetime

    def age(self, now: datetime) -> timedelta:
        return now - self.occurred_at


@dataclass(frozen=True, slots=True)
class Unsettled:
    """Selected events without an outcome, the reason most of them were left pending with
    (None when they were never attempted), and the oldest of them."""

    count: int
    top_reason: str | None
    oldest: PendingEvent | None


@dataclass(frozen=True, slots=True)
class IntegrationStatus:
    name: str
    type: str
    enabled: bool
    days_delivered: list[date]
    days_with_pending: list[date]
    selected: int
    accepted: int
    rejected: int
    skipped: int
    pending: int
    rejected_reasons: list[tuple[str, int]]
    skipped_reasons: list[tuple[str, int]]
    pending_reason: str | None
    oldest_pending: PendingEvent | None


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    at: datetime
    integrations: list[IntegrationStatus]
    quarantined: list[tuple[str, int]] = field(default_factory=list)
    # Nami's types no destination takes (sessions, purchase.updated): received and counted.
    not_sent_by_type: list[tuple[str, int]] = field(default_factory=list)


def _selected(integration: AnyIntegration, after: datetime | None, until: datetime | None):
    conditions = event_filter(integration).conditions()
    if after is not None:
        conditions.append(nami_events.c.occurred_at > after)
    if until is not None:
        conditions.append(nami_events.c.occurred_at <= until)
    return conditions


def _in_flight(integration: AnyIntegration, now: datetime):
    """Events whose user a run holds a live lease on: it is sending them now. (A lease is for
    a day; an event counts as in flight while its user is being sent for any day.)"""
    return in_live_span(integration.name, func.coalesce(nami_events.c.nami_user_id, NO_USER), now)


def unsettled(
    store: EventStore,
    integration: AnyIntegration,
    *,
    after: datetime | None = None,
    until: datetime | None = None,
    other_runs_sending: bool = True,
) -> Unsettled:
    """Selected events (that happened in `(after, until]`, when given) with no outcome. With
    `other_runs_sending=False`, events another run holds a live lease on are left out: a run
    that ends while another is still sending them has not left them behind."""
    DeliveryLedger(store.engine)  # the ledger tables exist before they are joined
    conditions = [*_selected(integration, after, until), ~settled(integration.name)]
    if not other_runs_sending:
        conditions.append(~_in_flight(integration, datetime.now(UTC)))
    count_query = select(func.count()).select_from(nami_events).where(*conditions)
    oldest_query = (
        select(nami_events.c.event_id, nami_events.c.occurred_at)
        .where(*conditions)
        .order_by(nami_events.c.occurred_at, nami_events.c.event_id)
        .limit(1)
    )
    ledger = delivery_ledger.c
    rows = func.count().label("rows")
    reason_query = (
        select(ledger.reason, rows)
        .select_from(delivery_ledger.join(nami_events, nami_events.c.event_id == ledger.event_id))
        .where(
            *_selected(integration, after, until),
            ledger.integration == integration.name,
            ledger.status == PENDING,
            ledger.reason.is_not(None),
        )
        .group_by(ledger.reason)
        .order_by(rows.desc(), ledger.reason)
        .limit(1)
    )
    with store.engine.connect() as connection:
        count = int(connection.execute(count_query).scalar() or 0)
        if not count:
            return Unsettled(0, None, None)
        oldest = connection.execute(oldest_query).one()
        reason = connection.execute(reason_query).first()
    occurred_at = oldest.occurred_at
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    return Unsettled(
        count, reason.reason if reason else None, PendingEvent(oldest.event_id, occurred_at)
    )


def unsettled_in_days(
    store: EventStore, integration: AnyIntegration, days: Sequence[date]
) -> Unsettled:
    """Unsettled events of the partitions from the first to the last of `days` that no other
    run is sending now: what a backfill of those days has left behind."""
    return unsettled(
        store,
        integration,
        after=day_end(min(days) - timedelta(days=1)),
        until=day_end(max(days)),
        other_runs_sending=False,
    )


def _ledger_summary(
    store: EventStore, integration: str
) -> tuple[dict[str, int], dict[str, list[tuple[str, int]]], list[date], list[date]]:
    ledger = delivery_ledger.c
    by_status_reason = (
        select(ledger.status, ledger.reason, func.count())
        .where(ledger.integration == integration)
        .group_by(ledger.status, ledger.reason)
    )
    days = (
        select(ledger.partition_date, func.sum(case((ledger.status == PENDING, 1), else_=0)))
        .where(ledger.integration == integration)
        .group_by(ledger.partition_date)
        .order_by(ledger.partition_date)
    )
    counts = {ACCEPTED: 0, REJECTED: 0, SKIPPED: 0}
    reasons: dict[str, dict[str, int]] = {REJECTED: {}, SKIPPED: {}}
    with store.engine.connect() as connection:
        for status, reason, count in connection.execute(by_status_reason):
            if status in counts:
                counts[status] += int(count)
            if status in reasons and reason:
                reasons[status][reason] = reasons[status].get(reason, 0) + int(count)
        day_rows = connection.execute(days).all()
    delivered = [day for day, pending in day_rows if not pending]
    with_pending = [day for day, pending in day_rows if pending]
    top = {status: top_reasons(found, TOP_REASONS) for status, found in reasons.items()}
    return counts, top, delivered, with_pending


def integration_status(
    store: EventStore, integration: AnyIntegration, now: datetime
) -> IntegrationStatus:
    DeliveryLedger(store.engine)
    selected_query = (
        select(func.count()).select_from(nami_events).where(*_selected(integration, None, None))
    )
    with store.engine.connect() as connection:
        selected = int(connection.execute(selected_query).scalar() or 0)
    counts, reasons, delivered, with_pending = _ledger_summary(store, integration.name)
    left = unsettled(store, integration, until=now)
    return IntegrationStatus(
        name=integration.name,
        type=integration.type,
        enabled=integration.enabled,
        days_delivered=delivered,
        days_with_pending=with_pending,
        selected=selected,
        accepted=counts[ACCEPTED],
        rejected=counts[REJECTED],
        skipped=counts[SKIPPED],
        pending=left.count,
        rejected_reasons=reasons[REJECTED],
        skipped_reasons=reasons[SKIPPED],
        pending_reason=left.top_reason,
        oldest_pending=left.oldest,
    )


def delivery_status(
    store: EventStore, integrations: Sequence[AnyIntegration], now: datetime | None = None
) -> DeliveryStatus:
    now = now or datetime.now(UTC)
    return DeliveryStatus(
        at=now,
        integrations=[integration_status(store, i, now) for i in integrations],
        quarantined=list(store.quarantined_by_reason().items()),
        not_sent_by_type=sorted(store.unsent_counts().items()),
    )


def status_as_json(status: DeliveryStatus) -> dict[str, Any]:
    """Plain JSON values: dates and instants as ISO 8601, ages in whole seconds."""

    def reasons(pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [{"reason": reason, "events": count} for reason, count in pairs]

    return {
        "at": status.at.isoformat(),
        "integrations": [
            {
                "name": item.name,
                "type": item.type,
                "enabled": item.enabled,
                "days_delivered": [day.isoformat() for day in item.days_delivered],
                "days_with_pending": [day.isoformat() for day in item.days_with_pending],
                "selected": item.selected,
                "accepted": item.accepted,
                "rejected": item.rejected,
                "skipped": item.skipped,
                "pending": item.pending,
                "top_rejected_reasons": reasons(item.rejected_reasons),
                "top_skipped_reasons": reasons(item.skipped_reasons),
                "pending_reason": item.pending_reason,
                "oldest_pending": None
                if item.oldest_pending is None
                else {
                    "event_id": item.oldest_pending.event_id,
                    "occurred_at": item.oldest_pending.occurred_at.isoformat(),
                    "age_seconds": int(item.oldest_pending.age(status.at).total_seconds()),
                },
            }
            for item in status.integrations
        ],
        "quarantined": reasons(status.quarantined),
        "not_sent_by_type": dict(status.not_sent_by_type),
    }
