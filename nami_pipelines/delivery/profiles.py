"""Attribute-only updates: after a chunk's events, and for users no event touches, a profile
that does not hold the user's current attributes gets them (profiles never move backwards,
docs/guarantees.md)."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import pandas as pd

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.ledger_writer import LedgerWriter
from nami_pipelines.delivery.record import LedgerSink
from nami_pipelines.delivery.report import DeliveryReport
from nami_pipelines.delivery.state import Contact, PreparedChunk
from nami_pipelines.destinations.client import DestinationClient
from nami_pipelines.destinations.outgoing import AttributeUpdateTarget
from nami_pipelines.destinations.selection import contact_filter
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES, UserAttributes
from nami_pipelines.snapshots.current import state_of_users_at
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines.snapshots.state import USER, materialize_snapshot

# Per user: the external id and the attribute values at the update's instant.
Current = Mapping[str, tuple[str | None, UserAttributes]]


def targets_for(
    current: Current,
    contacts: Iterable[tuple[str, Contact]],
    last_sent: dict[str, UserAttributes],
    at: datetime,
) -> tuple[list[AttributeUpdateTarget], dict[str, UserAttributes]]:
    """Attribute updates for users whose attributes differ from what their profile holds."""
    targets: list[AttributeUpdateTarget] = []
    changed: dict[str, UserAttributes] = {}
    for user, contact in contacts:
        found = current.get(user)
        if found is None:
            continue
        external_id, attributes = found
        if last_sent.get(user) == attributes:
            continue
        changed[user] = attributes
        targets.append(
            AttributeUpdateTarget(
                nami_user_id=user,
                external_id=external_id,
                device_id=contact.device_id,
                environment=contact.environment,
                attributes=attributes,
                as_of=at,
            )
        )
    return targets, changed


def bring_profiles_current(
    client: DestinationClient, sink: LedgerSink, prepared: PreparedChunk, now: datetime
) -> None:
    """After a chunk's events, the closing updates, from the state the chunk's pass left. What
    the profiles hold is read once the chunk's outcomes are written."""
    if not prepared.contacts:
        return
    users = sorted(prepared.contacts)
    current = _closing_values(prepared, users, now)
    sink.writer.flush()
    last_sent = sink.ledger.last_sent_attributes(sink.integration, users)
    contacts = [(user, prepared.contacts[user]) for user in users]
    targets, changed = targets_for(current, contacts, last_sent, now)
    if targets:
        # Attribute updates carry no events: the same sink records what the profiles now hold.
        client.send_attribute_updates(targets, sink=sink, attributes=changed)


def _closing_values(prepared: PreparedChunk, users: list[str], now: datetime) -> Current:
    """The users' external ids and attributes now, from the chunk's pass."""
    return {
        user: (state.external_id, state.attributes_at(now))
        for user in users
        if (state := prepared.closing.get(user)) is not None
    }


def _snapshot_values(snapshot: pd.DataFrame) -> dict[str, tuple[str | None, UserAttributes]]:
    """A materialized snapshot as per-user (external id, attributes)."""
    external_ids = [v if isinstance(v, str) else None for v in snapshot["external_id"].tolist()]
    # `tolist` gives Python bools and the snapshot's own lists, which nothing else holds.
    values = zip(*(snapshot[name].tolist() for name in ATTRIBUTE_NAMES), strict=True)
    return {
        user: (external_id, dict(zip(ATTRIBUTE_NAMES, row, strict=True)))
        for user, external_id, row in zip(
            snapshot[USER].tolist(), external_ids, values, strict=True
        )
    }


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
    latest = store.latest_contact(users, contact_filter(integration))
    if latest.empty:
        return [], {}
    in_scope = latest[USER].tolist()
    snapshot = materialize_snapshot(
        state_of_users_at(store, repository, in_scope, at), pd.Timestamp(at)
    )
    last_sent = {**ledger.last_sent_attributes(integration.name, in_scope), **(assume_sent or {})}
    devices = [v if isinstance(v, str) else None for v in latest["device_id"].tolist()]
    contacts = [
        (user, Contact(environment, device))
        for user, device, environment in zip(
            in_scope, devices, latest["environment"].tolist(), strict=True
        )
    ]
    return targets_for(_snapshot_values(snapshot), contacts, last_sent, at)


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
            sink = LedgerSink(ledger, writer, integration.name, worker, report)
            client.send_attribute_updates(targets, sink=sink, attributes=current)
