"""Select: how many of a day's events an integration considers, counted in the database by the
one selection rule (`destinations/selection.py`, applied by `events/filter.py`)."""

from datetime import date, timedelta

from nami_pipelines.config import AnyIntegration
from nami_pipelines.destinations.selection import event_filter
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.daily import day_end


def count_selected(store: EventStore, integration: AnyIntegration, day: date) -> int:
    """The number of events `deliver_day` will consider for this day, counted in SQL."""
    return store.count_selected(
        event_filter(integration),
        occurred_after=day_end(day - timedelta(days=1)),
        occurred_until=day_end(day),
    )
