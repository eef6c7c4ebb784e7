"""Read: a day's rows of one app, grouped by user and in time order, in chunks of whole users.

A chunk holds every event of its users in the day (the attributes as of an event depend on the
devices seen earlier that day), as plain tuples: each row is visited once, by the state stage,
and a DataFrame would cost more to build than that visit. The positions in a row are named
once, in `destinations/outgoing.py` (`USER_AT`: where the user id is).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Final

from nami_pipelines.config import AnyIntegration
from nami_pipelines.destinations.outgoing import EVENT_ID, OCCURRED_AT, Row
from nami_pipelines.destinations.outgoing import NAMI_USER_ID as USER_AT
from nami_pipelines.destinations.selection import event_filter
from nami_pipelines.events.store import EventStore, UserSpan
from nami_pipelines.snapshots.daily import day_end

DAY_CHUNK_ROWS: Final = 20_000

__all__ = ["DAY_CHUNK_ROWS", "EVENT_ID", "OCCURRED_AT", "USER_AT", "DayChunk", "Row", "day_chunks"]


@dataclass(frozen=True, slots=True)
class DayChunk:
    """Some users' rows of the day (events without a user come first, in the first chunk) and
    which of them this integration sends, in the same order."""

    rows: list[Row]
    selected: list[Row]


def day_chunks(
    store: EventStore,
    integration: AnyIntegration,
    day: date,
    chunk_rows: int = DAY_CHUNK_ROWS,
    users: UserSpan | None = None,
) -> Iterator[DayChunk]:
    """The day's rows (of the `users` span only, if given) in chunks of about `chunk_rows`."""
    chosen = event_filter(integration).row_test()
    parts = store.read_rows_by_user(
        occurred_after=day_end(day - timedelta(days=1)),
        occurred_until=day_end(day),
        app_id=integration.app_id,
        chunk_rows=chunk_rows,
        users=users,
    )
    # No frame here names a chunk while the caller sends it: once sent and let go, its rows
    # are freed before the collector's pass (see `collection.py`).
    yield from map(partial(_chunk, chosen), _WholeUsers(parts))


def _chunk(chosen: Callable[[Row], bool], rows: list[Row]) -> DayChunk:
    return DayChunk(rows, [row for row in rows if chosen(row)])


class _WholeUsers:
    """Parts ordered by user, re-cut so that no user's rows span two chunks (an iterator
    object rather than a generator, so nothing keeps the chunk last handed out)."""

    def __init__(self, parts: Iterator[list[Row]]) -> None:
        self._parts = parts
        self._pending: list[Row] = []

    def __iter__(self) -> "_WholeUsers":
        return self

    def __next__(self) -> list[Row]:
        for part in self._parts:
            rows = self._pending + part if self._pending else part
            last_user = rows[-1][USER_AT]
            boundary = len(rows)
            if last_user is not None:
                while boundary > 0 and rows[boundary - 1][USER_AT] == last_user:
                    boundary -= 1
            if boundary == 0:
                self._pending = rows
                continue
            self._pending = rows[boundary:]
            return rows[:boundary]
        if not self._pending:
            raise StopIteration
        rows, self._pending = self._pending, []
        return rows
