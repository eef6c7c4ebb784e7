"""The send loop for one (day, integration): select, claim, map, send, record, then bring the
touched profiles to their current attributes.

This is where the database (`events`, `snapshots`, the ledger) meets a destination client; the
client never reads the database and the store never knows a destination.
"""

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import orjson
import pandas as pd

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.ledger import PENDING, Candidate, DeliveryLedger
from nami_pipelines.delivery.ledger_writer import LedgerWriter
from nami_pipelines.delivery.revenue_rates import revenue_conversion
from nami_pipelines.destinations.client import DeliverySink, DestinationClient
from nami_pipelines.destinations.http import Unresolved
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, Outcome
from nami_pipelines.destinations.outgoing import AttributeUpdateTarget, OutgoingEvent
from nami_pipelines.destinations.revenue import RevenueConversion, with_converted_revenue
from nami_pipelines.destinations.selection import contact_filter, event_filter
from nami_pipelines.event_types import is_user_event
from nami_pipelines.events.model import USER, NamiEvent
from nami_pipelines.events.store import EventStore, UserSpan
from nami_pipelines.snapshots.at_events import attributes_at_events
from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES, UserAttributes
from nami_pipelines.snapshots.current import state_of_users_at
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines.snapshots.state import (
    SnapshotState,
    UsersEvents,
    advance_state,
    materialize_snapshot,
    users_events,
)

DAY_CHUNK_ROWS = 20_000
HISTORICAL_AGE = timedelta(days=30)
REASON_KEY_LENGTH = 120


@dataclass(slots=True)
class DeliveryReport:
    """What a run did, for the run log, the asset metadata and the demo's summary."""

    integration: str
    day: date
    selected: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    already_done: int = 0
    unresolved: int = 0
    attribute_updates: int = 0
    historical: bool = False
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    duration_seconds: float = 0.0
    # Per status (rejected, skipped, pending), how many events got each reason.
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)

    def count_reason(self, status: str, reason: str, count: int = 1) -> None:
        of_status = self.reasons.setdefault(status, {})
        key = reason[:REASON_KEY_LENGTH]
        of_status[key] = of_status.get(key, 0) + count

    @property
    def events_per_second(self) -> float:
        sent = self.accepted + self.rejected
        return sent / self.duration_seconds if self.duration_seconds > 0 else 0.0


def selects(integration: AnyIntegration, events: pd.DataFrame) -> pd.Series:
    """Which rows of an app's events this integration sends (destinations/selection.py)."""
    return event_filter(integration).matches(events)


def count_selected(store: EventStore, integration: AnyIntegration, day: date) -> int:
    """The number of events `deliver_day` will consider for this day, counted in SQL."""
    return store.count_selected(
        event_filter(integration),
        occurred_after=day_end(day - timedelta(days=1)),
        occurred_until=day_end(day),
    )


def nami_events_of(rows: pd.DataFrame) -> list[NamiEvent]:
    """Stored rows as the typed events the mappings take, column by column (a per-row
    `to_dict` costs more than the mapping itself); each payload is parsed once, here."""
    occurred = rows["occurred_at"].array.to_pydatetime() if len(rows) else []
    payloads = rows["payload"].tolist()
    return [
        NamiEvent(
            event_id=event_id,
            event_type=event_type,
            occurred_at=occurred_at,
            app_id=app_id,
            app_platform_id=app_platform_id,
            platform_type=platform_type,
            nami_user_id=nami_user_id,
            external_id=external_id,
            device_id=device_id,
            environment=environment,
            payload=orjson.loads(payload),
            payload_json=payload,
        )
        for (
            event_id,
            event_type,
            occurred_at,
            app_id,
            app_platform_id,
            platform_type,
            nami_user_id,
            external_id,
            device_id,
            environment,
            payload,
        ) in zip(
            rows["event_id"].tolist(),
            rows["event_type"].tolist(),
            occurred,
            rows["app_id"].tolist(),
            _texts(rows["app_platform_id"]),
            _texts(rows["platform_type"]),
            _texts(rows[USER]),
            _texts(rows["external_id"]),
            _texts(rows["device_id"]),
            rows["environment"].tolist(),
            payloads,
            strict=True,
        )
    ]


def _texts(values: pd.Series) -> list[str | None]:
    """A nullable text column as str or None (pandas may hold a missing value as NaN)."""
    return [value if isinstance(value, str) else None for value in values.tolist()]


class _LedgerSink(DeliverySink):
    """Records outcomes in the ledger as responses arrive and keeps the run's counts."""

    def __init__(
        self,
        ledger: DeliveryLedger,
        writer: LedgerWriter,
        integration: str,
        worker: str,
        report: DeliveryReport,
        user_of: dict[str, str],
        attributes: dict[str, UserAttributes],
    ) -> None:
        self.ledger = ledger
        self.writer = writer
        self.integration = integration
        self.worker = worker
        self.report = report
        self.user_of = user_of
        self.attributes = attributes
        self.profiles: dict[str, UserAttributes] = {}

    def outcomes(self, outcomes: list[Outcome], attempts: int) -> None:
        self.writer.submit(
            self.ledger.record, self.integration, outcomes, worker=self.worker, attempts=attempts
        )
        for outcome in outcomes:
            if outcome.status == ACCEPTED:
                self.report.accepted += 1
                carried = self.attributes.get(outcome.event_id)
                if carried is not None:
                    self.profiles[self.user_of[outcome.event_id]] = carried
            elif outcome.status == REJECTED:
                self.report.rejected += 1
            elif outcome.status == SKIPPED:
                self.report.skipped += 1
            if outcome.reason and outcome.status != ACCEPTED:
                self.report.count_reason(outcome.status, outcome.reason)

    def unresolved(self, unresolved: Unresolved) -> None:
        self.report.unresolved += len(unresolved.event_ids)
        self.report.count_reason(PENDING, unresolved.reason, len(unresolved.event_ids))
        self.writer.submit(
            self.ledger.release,
            self.integration,
            list(unresolved.event_ids),
            worker=self.worker,
            reason=unresolved.reason,
            attempts=unresolved.attempts,
        )

    def attributes_delivered(
        self, users: Sequence[str], attributes: dict[str, UserAttributes]
    ) -> None:
        self.writer.submit(
            self.ledger.remember_sent_attributes,
            self.integration,
            {user: attributes[user] for user in users},
        )
        self.report.attribute_updates += len(users)


@dataclass(frozen=True, slots=True)
class DayChunk:
    """Some users' events of the day: all of them (the attributes as of an event depend on the
    devices seen earlier that day), and the ones this integration sends."""

    events: pd.DataFrame
    selected: pd.DataFrame


def day_chunks(
    store: EventStore,
    integration: AnyIntegration,
    day: date,
    chunk_rows: int = DAY_CHUNK_ROWS,
    users: UserSpan | None = None,
) -> Iterator[DayChunk]:
    for chunk in store.read_events_by_user(
        occurred_after=day_end(day - timedelta(days=1)),
        occurred_until=day_end(day),
        app_id=integration.app_id,
        chunk_rows=chunk_rows,
        users=users,
    ):
        yield DayChunk(chunk, chunk[selects(integration, chunk)])


@dataclass(frozen=True, slots=True)
class PreparedEvents:
    """A chunk's events ready to send, the users' state they were computed from, and the
    transactions held back (no exchange rate yet: they stay pending, with the reason)."""

    outgoing: list[OutgoingEvent]
    carried: dict[str, UserAttributes]
    state_before: SnapshotState
    user_events: UsersEvents
    held: list[Unresolved] = field(default_factory=list)


def outgoing_events(
    store: EventStore,
    repository: SnapshotRepository,
    chunk: DayChunk,
    to_send: pd.DataFrame,
    day: date,
    revenue: RevenueConversion | None = None,
) -> PreparedEvents:
    """The events to send, each `user.*` event with the user's attributes as of itself and
    each transaction in the integration's currency when it converts (`revenue`)."""
    users = sorted(set(to_send[USER].dropna()))
    state_before = state_of_users_at(store, repository, users, day_end(day - timedelta(days=1)))
    user_events = users_events(chunk.events[chunk.events[USER].isin(users)])
    carried = attributes_at_events(state_before, user_events)
    outgoing = [
        OutgoingEvent(
            event,
            carried.get(event.event_id) if is_user_event(event.event_type) else None,
        )
        for event in nami_events_of(to_send)
    ]
    ready, held = with_converted_revenue(outgoing, revenue)
    return PreparedEvents(ready, carried, state_before, user_events, held)


def current_snapshot(
    store: EventStore, prepared: PreparedEvents, users: list[str], day: date, now: datetime
) -> pd.DataFrame:
    """The users' attributes now, from the state the chunk already built: the day's events, then
    any later ones (a backfilled day), without reading their history again."""
    instant = pd.Timestamp(now)
    day_events = prepared.user_events
    until_now = day_events.events[day_events.events["occurred_at"] <= instant]
    # The chunk's parse serves as is unless some event lies after `now` (a clock ahead of ours).
    state = advance_state(
        prepared.state_before, day_events if len(until_now) == len(day_events.events) else until_now
    )
    if now > day_end(day):
        for later in store.read_events(
            occurred_after=day_end(day), occurred_until=now, nami_user_ids=users
        ):
            state = advance_state(state, later)
    return materialize_snapshot(state, instant)


def chunk_contacts(to_send: pd.DataFrame) -> pd.DataFrame:
    """Per user, the environment of their latest sent event and their latest device."""
    ordered = to_send[to_send[USER].notna()].sort_values([USER, "occurred_at", "loaded_seq"])
    latest = ordered.drop_duplicates(USER, keep="last").set_index(USER)
    with_device = ordered[ordered["device_id"].notna()].drop_duplicates(USER, keep="last")
    latest["device_id"] = with_device.set_index(USER)["device_id"].reindex(latest.index)
    return latest[["environment", "device_id"]].reset_index()


def targets_for(
    snapshot: pd.DataFrame,
    contacts: pd.DataFrame,
    last_sent: dict[str, UserAttributes],
    at: datetime,
) -> tuple[list[AttributeUpdateTarget], dict[str, UserAttributes]]:
    """Attribute updates for users whose attributes differ from what their profile holds."""
    position = {user: row for row, user in enumerate(snapshot[USER].tolist())}
    external_ids = _texts(snapshot["external_id"])
    # `tolist` gives Python bools and the snapshot's own lists, which nothing else holds.
    values = list(zip(*(snapshot[name].tolist() for name in ATTRIBUTE_NAMES), strict=True))
    targets: list[AttributeUpdateTarget] = []
    current: dict[str, UserAttributes] = {}
    for user, device_id, environment in zip(
        contacts[USER].tolist(),
        _texts(contacts["device_id"]),
        contacts["environment"].tolist(),
        strict=True,
    ):
        row = position.get(user)
        if row is None:
            continue
        attributes: UserAttributes = dict(zip(ATTRIBUTE_NAMES, values[row], strict=True))
        if last_sent.get(user) == attributes:
            continue
        current[user] = attributes
        targets.append(
            AttributeUpdateTarget(
                nami_user_id=user,
                external_id=external_ids[row],
                device_id=device_id,
                environment=environment,
                attributes=attributes,
                as_of=at,
            )
        )
    return targets, current


def deliver_day(
    *,
    store: EventStore,
    repository: SnapshotRepository,
    ledger: DeliveryLedger,
    integration: AnyIntegration,
    client: DestinationClient,
    day: date,
    resend: bool = False,
    now: datetime | None = None,
    worker: str | None = None,
    chunk_rows: int = DAY_CHUNK_ROWS,
    progress: Callable[[DeliveryReport], None] | None = None,
    users: UserSpan | None = None,
) -> DeliveryReport:
    """Send the day's selected events (of the `users` span only, if given) and the attribute
    updates of the users they touch."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    worker = worker or f"{integration.name}-{uuid.uuid4().hex[:12]}"
    report = DeliveryReport(integration=integration.name, day=day)
    report.historical = day_end(day) < now - HISTORICAL_AGE
    revenue = revenue_conversion(integration, store, day)  # rates: once per run
    with LedgerWriter() as writer:
        for chunk in day_chunks(store, integration, day, chunk_rows, users):
            selected = chunk.selected
            report.selected += len(selected)
            if selected.empty:
                continue
            claimed = set(
                ledger.claim(
                    integration.name,
                    [
                        Candidate(event_id, user, day)
                        for event_id, user in zip(
                            selected["event_id"].tolist(), _texts(selected[USER]), strict=True
                        )
                    ],
                    worker=worker,
                    resend=resend,
                )
            )
            report.already_done += len(selected) - len(claimed)
            if not claimed:
                continue
            to_send = selected[selected["event_id"].isin(claimed)]
            prepared = outgoing_events(store, repository, chunk, to_send, day, revenue)
            sink = _LedgerSink(
                ledger,
                writer,
                integration.name,
                worker,
                report,
                dict(zip(to_send["event_id"], to_send[USER], strict=True)),
                prepared.carried,
            )
            for held in prepared.held:
                sink.unresolved(held)
            client.send_events(prepared.outgoing, historical=report.historical, sink=sink)
            if sink.profiles:
                writer.submit(ledger.remember_sent_attributes, integration.name, sink.profiles)
            _bring_profiles_current(client, sink, prepared, to_send, store, day, now)
            _copy_stats(client, report)
            if progress is not None:
                report.duration_seconds = time.monotonic() - started
                progress(report)
    report.duration_seconds = time.monotonic() - started
    return report


def _bring_profiles_current(
    client: DestinationClient,
    events_sink: _LedgerSink,
    prepared: PreparedEvents,
    to_send: pd.DataFrame,
    store: EventStore,
    day: date,
    now: datetime,
) -> None:
    """After a chunk's events, send attribute-only updates where a profile does not yet hold
    the user's current attributes (profiles never move backwards, docs/guarantees.md). The
    snapshot is computed while the chunk's outcomes are still being written; what the profiles
    hold is read once they are."""
    contacts = chunk_contacts(to_send)
    users = contacts[USER].tolist()
    if not users:
        return
    snapshot = current_snapshot(store, prepared, users, day, now)
    events_sink.writer.flush()
    last_sent = events_sink.ledger.last_sent_attributes(events_sink.integration, users)
    targets, current = targets_for(snapshot, contacts, last_sent, now)
    if targets:
        # Attribute updates carry no events: the same sink records what the profiles now hold.
        client.send_attribute_updates(targets, sink=events_sink, attributes=current)


def attribute_targets(
    *,
    store: EventStore,
    repository: SnapshotRepository,
    ledger: DeliveryLedger,
    integration: AnyIntegration,
    users: Sequence[str],
    at: datetime,
    assume_sent: dict[str, UserAttributes] | None = None,
) -> tuple[list[AttributeUpdateTarget], dict[str, UserAttributes]]:
    """Users of this integration whose attributes at `at` differ from what it last sent them
    (or from `assume_sent`, for a preview of events not really sent), with those attributes.
    Read-only: nothing is sent or recorded here."""
    if not users:
        return [], {}
    contacts = store.latest_contact(users, contact_filter(integration))
    if contacts.empty:
        return [], {}
    in_scope = contacts[USER].tolist()
    snapshot = materialize_snapshot(
        state_of_users_at(store, repository, in_scope, at), pd.Timestamp(at)
    )
    last_sent = {**ledger.last_sent_attributes(integration.name, in_scope), **(assume_sent or {})}
    return targets_for(snapshot, contacts, last_sent, at)


def sync_attributes(
    *,
    store: EventStore,
    repository: SnapshotRepository,
    ledger: DeliveryLedger,
    integration: AnyIntegration,
    client: DestinationClient,
    users: Sequence[str],
    at: datetime,
    report: DeliveryReport,
    worker: str,
) -> None:
    """Send attribute-only updates to users whose attributes at `at` differ from what this
    integration last sent them (profiles never move backwards, docs/guarantees.md)."""
    targets, current = attribute_targets(
        store=store,
        repository=repository,
        ledger=ledger,
        integration=integration,
        users=users,
        at=at,
    )
    if targets:
        with LedgerWriter() as writer:
            sink = _LedgerSink(ledger, writer, integration.name, worker, report, {}, {})
            client.send_attribute_updates(targets, sink=sink, attributes=current)


def _copy_stats(client: DestinationClient, report: DeliveryReport) -> None:
    stats = client.stats
    report.requests = stats.requests
    report.retries = stats.retries
    report.throttled = stats.throttled
    report.server_errors = stats.server_errors
    report.transport_errors = stats.transport_errors
