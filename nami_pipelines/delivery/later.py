"""State, for a day sent after it ended (yesterday's, a backfill): the events between the day's
end and `now` count for the closing attributes of the users the day touched.

The window is counted once per run (a bounded read of the time index). Usually it is empty or
small (the hours since midnight), and then it is read once and each chunk takes its users'
events from that; asking the database per chunk for its users' later events probed the user
index once per user (90,000 users: half a second, finding nothing). A large window (a backfill
weeks back) is read per chunk, for that chunk's users only, so memory stays bounded.
"""

from datetime import date, datetime
from typing import Final

import pandas as pd

from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.running import RunningState, fold_events
from nami_pipelines.snapshots.state import USER

# A window of at most this many events (of any app) is read once per run and kept.
READ_AT_ONCE_EVENTS: Final = 20_000


class LaterEvents:
    """The events after one day up to `now`, folded into the closing states chunk by chunk."""

    def __init__(self, store: EventStore, day: date, now: datetime) -> None:
        self._store = store
        self._after = day_end(day)
        self._now = now
        counted = store.count_window(
            occurred_after=self._after, occurred_until=now, up_to=READ_AT_ONCE_EVENTS + 1
        )
        self._per_chunk = counted > READ_AT_ONCE_EVENTS
        parts = (
            list(store.read_events(occurred_after=self._after, occurred_until=now))
            if 0 < counted <= READ_AT_ONCE_EVENTS
            else []
        )
        # The whole window when it is small; None when it is empty or read per chunk.
        self._kept = pd.concat(parts, ignore_index=True) if parts else None

    def fold_into(self, closing: dict[str, RunningState]) -> None:
        """Move each of `closing`'s states past its user's later events."""
        if self._per_chunk:
            for later in self._store.read_events(
                occurred_after=self._after, occurred_until=self._now, nami_user_ids=list(closing)
            ):
                fold_events(closing, later)
        elif self._kept is not None:
            theirs = self._kept[self._kept[USER].isin(closing.keys())]
            if len(theirs):
                fold_events(closing, theirs)
