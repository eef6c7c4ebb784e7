"""Attribute changes that no event carries: an entitlement that expires on its own changes the
user's `namiml_*` attributes, and the profile must follow (docs/attributes.md)."""

import uuid
from datetime import datetime

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.run import DeliveryReport, sync_attributes
from nami_pipelines.destinations.client import DestinationClient
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.repository import SnapshotRepository


def sync_expired_attributes(
    *,
    store: EventStore,
    repository: SnapshotRepository,
    integration: AnyIntegration,
    client: DestinationClient,
    now: datetime,
) -> int:
    """Send current attributes to users whose earliest expiration has passed since the latest
    stored snapshot; users whose profile already holds them are not sent again."""
    latest = repository.latest_day()
    if latest is None:
        return 0
    users = repository.users_expiring(latest, now)
    report = DeliveryReport(integration=integration.name, day=now.date())
    sync_attributes(
        store=store,
        repository=repository,
        ledger=DeliveryLedger(store.engine),
        integration=integration,
        client=client,
        users=users,
        at=now,
        report=report,
        worker=f"{integration.name}-sync-{uuid.uuid4().hex[:8]}",
    )
    return report.attribute_updates
