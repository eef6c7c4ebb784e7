"""Which events an integration sends: its app, its event types and, for a feed bound to one
platform, that platform."""

from datetime import date, timedelta

import pandas as pd

from nami_pipelines.config import ALL_PLATFORMS, AnyIntegration, MParticleIntegration
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.daily import day_end


def bound_platform(integration: AnyIntegration) -> str | None:
    """The platform a feed acts as; None when every platform's events go to it."""
    if isinstance(integration, MParticleIntegration) and integration.platform != ALL_PLATFORMS:
        return integration.platform
    return None


def selects(integration: AnyIntegration, events: pd.DataFrame) -> pd.Series:
    """Which rows of an app's events this integration sends (type, and platform for a feed)."""
    chosen = events["event_type"].isin(integration.selected_events)
    platform = bound_platform(integration)
    if platform is not None:
        chosen &= events["platform_type"] == platform
    return chosen


def count_selected(store: EventStore, integration: AnyIntegration, day: date) -> int:
    """The number of events `deliver_day` will consider for this day, counted in SQL."""
    return store.count_selected(
        app_id=integration.app_id,
        occurred_after=day_end(day - timedelta(days=1)),
        occurred_until=day_end(day),
        event_types=integration.selected_events,
        platform_type=bound_platform(integration),
    )
