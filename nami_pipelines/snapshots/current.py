"""The state of a few users at any instant, from the latest trustworthy daily snapshot onwards.

Delivery needs it for the users a run touches: the state before a day's events (to know the
attributes as of each event) and the attributes "now" (so a backfill leaves profiles current).
Starting from the latest stored day that is not stale keeps this proportional to those users'
recent events; with no usable day, the users' whole history is folded instead.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.codec import decode_state
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines.snapshots.state import SnapshotState, advance_state, empty_state
from nami_pipelines.snapshots.tables import user_attribute_snapshot_days

_DAYS_TO_TRY = 4


def _usable_day(repository: SnapshotRepository, at: datetime) -> datetime | None:
    """The latest stored day ending at or before `at` whose result is not stale."""
    days = user_attribute_snapshot_days
    query = (
        select(days.c.partition_date)
        .where(days.c.partition_date <= at.date())
        .order_by(days.c.partition_date.desc())
        .limit(_DAYS_TO_TRY)
    )
    with repository.engine.connect() as connection:
        candidates = list(connection.execute(query).scalars())
    for day in candidates:
        if day_end(day) > at:
            continue
        record = repository.day_record(day)
        if record is not None and not repository.is_stale(record, day_end(day)):
            return day
    return None


def state_of_users_at(
    store: EventStore, repository: SnapshotRepository, users: Sequence[str], at: datetime
) -> SnapshotState:
    """The carry-over state of `users` counting every event with `occurred_at <= at`."""
    if not users or not store.has_events_until(at):
        return empty_state()
    day = _usable_day(repository, at)
    if day is None:
        state, since = empty_state(), None
    else:
        state, since = decode_state(repository.read_rows(day, users)), day_end(day)
    if since is not None and since >= at:
        # The stored day ends at `at` (the usual case: yesterday's snapshot, as today's events
        # are sent): no event can lie between, and asking costs an index probe per user.
        return state
    for chunk in store.read_events(
        occurred_after=since, occurred_until=at, nami_user_ids=list(users)
    ):
        state = advance_state(state, chunk)
    return state
