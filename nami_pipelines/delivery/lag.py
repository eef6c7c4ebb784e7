"""How far behind an integration's deliveries are: selected events, old enough to have been sent,
that still have no outcome in the ledger."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.ledger_tables import settled
from nami_pipelines.destinations.selection import event_filter
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events


@dataclass(frozen=True, slots=True)
class DeliveryLag:
    """Undelivered selected events in the window, and when the oldest of them happened."""

    integration: str
    undelivered: int
    oldest: datetime | None


def delivery_lag(
    store: EventStore, integration: AnyIntegration, *, since: datetime, older_than: datetime
) -> DeliveryLag:
    """Events with `since < occurred_at <= older_than` this integration selects and has not
    settled (no ledger row, or still pending)."""
    query = select(func.count(), func.min(nami_events.c.occurred_at)).where(
        *event_filter(integration).conditions(),
        nami_events.c.occurred_at > since,
        nami_events.c.occurred_at <= older_than,
        ~settled(integration.name),
    )
    with store.engine.connect() as connection:
        count, oldest = connection.execute(query).one()
    return DeliveryLag(integration.name, int(count or 0), oldest)
