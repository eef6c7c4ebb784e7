"""The snapshot at the end of each UTC day, computed incrementally from the day before.

Day D starts from day D-1's stored state and folds in only day D's events; users with no event
whose earliest entitlement expiration falls within D are re-evaluated too, and only their rows
are stored for D; everyone else keeps the row of an earlier day (see snapshots.tables). A day's
cost therefore follows that day's events and the users they touch, not the length of history.
When D-1 is missing or stale (a late event arrived after it was computed), day D is computed
from scratch instead, so a result is never built on a wrong base. Both ways read events grouped
by user, so each chunk of whole users is folded and written on its own.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from nami_pipelines.events.model import USER
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.codec import decode_state, encode_state, snapshot_rows
from nami_pipelines.snapshots.days import day_end
from nami_pipelines.snapshots.repository import (
    NO_USERS,
    CarriedFrom,
    SnapshotRepository,
    SnapshotSummary,
    summary_of_rows,
)
from nami_pipelines.snapshots.spool import frame_spool
from nami_pipelines.snapshots.state import (
    SnapshotState,
    advance_state,
    empty_state,
    materialize_snapshot,
    next_expiration,
)

MODE_INCREMENTAL = "incremental"
MODE_FROM_SCRATCH = "from_scratch"
_EXPIRING_USERS_PER_PART = 10_000


@dataclass(frozen=True, slots=True)
class DaySnapshotResult:
    """What a day's materialization did, for the UI."""

    day: date
    mode: str
    users: int
    recomputed_users: int
    day_events: int
    summary: SnapshotSummary


def _rows_for(state: SnapshotState, at: pd.Timestamp) -> pd.DataFrame:
    snapshot = materialize_snapshot(state, at)
    rows = snapshot_rows(snapshot).set_index(USER)
    rows["carry_state"] = encode_state(state)
    rows["next_expiration"] = next_expiration(state, at)
    return rows.reset_index()


@dataclass(slots=True)
class _Tally:
    """What the computation of a day saw, counted while its rows stream past."""

    day_events: int = 0
    recomputed_users: int = 0
    replaced: SnapshotSummary = NO_USERS

    def prior(self, rows: pd.DataFrame) -> SnapshotState:
        """The state of the day before in `rows`, whose counts the day's new rows replace."""
        self.replaced += summary_of_rows(rows)
        return decode_state(rows)


def _from_scratch(store: EventStore, day: date, tally: _Tally) -> Iterator[pd.DataFrame]:
    """Every user's rows at the end of `day`, folding one chunk of whole users at a time: no
    chunk depends on another, so time and memory follow the chunk, not the users seen so far."""
    day_start = pd.Timestamp(day_end(day - timedelta(days=1)))
    at = pd.Timestamp(day_end(day))
    for chunk in store.read_events_grouped_by_user(occurred_until=day_end(day)):
        tally.day_events += int((chunk["occurred_at"] > day_start).sum())
        state = advance_state(empty_state(), chunk)
        if state.user_count:
            yield _rows_for(state, at)


def _incremental(
    store: EventStore, repository: SnapshotRepository, day: date, tally: _Tally
) -> Iterator[pd.DataFrame]:
    """The rows of the users the day's events touch, each chunk of whole users folded onto
    their state of the day before; then those whose earliest expiration falls within the day."""
    previous_day = day - timedelta(days=1)
    end = day_end(day)
    at = pd.Timestamp(end)
    touched: set[str] = set()
    for chunk in store.read_events_grouped_by_user(
        occurred_after=day_end(previous_day), occurred_until=end
    ):
        tally.day_events += len(chunk)
        users = chunk[USER].dropna().unique().tolist()
        if users:
            touched.update(users)
            prior = tally.prior(repository.read_rows(previous_day, users))
            yield _rows_for(advance_state(prior, chunk), at)
    expiring = sorted(set(repository.users_expiring(previous_day, end)) - touched)
    for start in range(0, len(expiring), _EXPIRING_USERS_PER_PART):
        users = expiring[start : start + _EXPIRING_USERS_PER_PART]
        yield _rows_for(tally.prior(repository.read_rows(previous_day, users)), at)


def materialize_day(
    store: EventStore, repository: SnapshotRepository, day: date
) -> DaySnapshotResult:
    """Compute and store the snapshot at the end of `day` (replacing any earlier result)."""
    basis = store.max_loaded_seq()
    previous_day = day - timedelta(days=1)
    previous = repository.day_record(previous_day)
    usable_previous = previous is not None and not repository.is_stale(
        previous, day_end(previous_day)
    )
    tally = _Tally()
    if usable_previous:
        mode, parts = MODE_INCREMENTAL, _incremental(store, repository, day, tally)
    else:
        mode, parts = MODE_FROM_SCRATCH, _from_scratch(store, day, tally)
    with frame_spool() as spool:
        for part in parts:
            tally.recomputed_users += len(part)
            spool.add(part)
        carried = CarriedFrom(previous_day, tally.replaced) if usable_previous else None
        users = repository.write_day(
            day, spool.frames(), carried=carried, basis_loaded_seq=basis, mode=mode
        )
    return DaySnapshotResult(
        day=day,
        mode=mode,
        users=users,
        recomputed_users=tally.recomputed_users,
        day_events=tally.day_events,
        summary=repository.summary(day),
    )
