"""A dry run of one (day, integration): the request bodies delivery would send now, computed by
the same selection, attribute and mapping code, with nothing sent and nothing written."""

from collections.abc import Iterator
from datetime import UTC, date, datetime

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.later import LaterEvents
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.profiles import attribute_targets
from nami_pipelines.delivery.read import EVENT_ID, OCCURRED_AT, USER_AT, day_chunks
from nami_pipelines.delivery.revenue_rates import revenue_conversion
from nami_pipelines.delivery.state import prepare_chunk
from nami_pipelines.destinations.client import DestinationClient
from nami_pipelines.destinations.revenue import with_converted_revenue
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.attributes import UserAttributes
from nami_pipelines.snapshots.repository import SnapshotRepository


def preview_day(
    *,
    store: EventStore,
    repository: SnapshotRepository,
    integration: AnyIntegration,
    client: DestinationClient,
    day: date,
    now: datetime | None = None,
) -> Iterator[bytes]:
    """Event requests first (events already settled in the ledger are left out, as a real run
    would; transactions in another currency at the rates a run would use now, and those with no
    rate yet left out, as a run would hold them), then the attribute updates that follow."""
    now = now or datetime.now(UTC)
    ledger = DeliveryLedger(store.engine)
    revenue = revenue_conversion(integration, store, day)
    touched: set[str] = set()
    carried_last: dict[str, UserAttributes] = {}
    later = LaterEvents(store, day, now)
    for chunk in day_chunks(store, integration, day):
        if not chunk.selected:
            continue
        users = [row[USER_AT] for row in chunk.selected]
        settled = ledger.settled_events(integration.name, day, users)
        to_send = {row[EVENT_ID] for row in chunk.selected} - settled
        if not to_send:
            continue
        prepared = prepare_chunk(store, repository, chunk, to_send, day, now, later)
        touched.update(prepared.contacts)
        events = prepared.events
        rows = events.rows
        for position in sorted(prepared.carried.values(), key=lambda p: rows[p][OCCURRED_AT]):
            carried_last[rows[position][USER_AT]] = events.attributes[position]
        outgoing, _held = with_converted_revenue(events, revenue)
        yield from client.render_events(outgoing)
    targets, _ = attribute_targets(
        store=store,
        repository=repository,
        ledger=ledger,
        integration=integration,
        users=sorted(touched),
        at=now,
        assume_sent=carried_last,
    )
    yield from client.render_attribute_updates(targets)
