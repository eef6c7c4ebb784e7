"""The snapshot at the end of each UTC day, computed incrementally from the day before.

Day D starts from day D-1's stored state and folds in only day D's events; users with no event
whose earliest entitlement expiration falls within D are re-evaluated too, and only their rows
are stored for D; everyone else keeps the row of an earlier day (see snapshots.tables). A day's
cost therefore follows that day's events and the users they touch, not the length of history. When D-1 is missing or stale (a late event arrived after it was
computed), day D is computed from scratch instead, so a result is never built on a wrong base.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.codec import decode_state, encode_state, snapshot_rows
from nami_pipelines.snapshots.days import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository, SnapshotSummary
from nami_pipelines.snapshots.state import (
    USER,
    SnapshotState,
    advance_state,
    empty_state,
    materialize_snapshot,
    next_expiration,
)

MODE_INCREMENTAL = "incremental"
MODE_FROM_SCRATCH = "from_scratch"


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


def _fold(state: SnapshotState, chunks: list[pd.DataFrame]) -> SnapshotState:
    for chunk in chunks:
        state = advance_state(state, chunk)
    return state


def materialize_day(
    store: EventStore, repository: SnapshotRepository, day: date
) -> DaySnapshotResult:
    """Compute and store the snapshot at the end of `day` (replacing any earlier result)."""
    end = day_end(day)
    at = pd.Timestamp(end)
    basis = store.max_loaded_seq()
    previous_day = day - timedelta(days=1)
    previous = repository.day_record(previous_day)
    usable_previous = previous is not None and not repository.is_stale(
        previous, day_end(previous_day)
    )
    if usable_previous:
        day_chunks = list(
            store.read_events(occurred_after=day_end(previous_day), occurred_until=end)
        )
        touched = {user for chunk in day_chunks for user in chunk[USER].dropna().unique()}
        expiring = set(repository.users_expiring(previous_day, end))
        prior_rows = repository.read_rows(previous_day, sorted(touched | expiring))
        state = _fold(decode_state(prior_rows), day_chunks)
        rows = _rows_for(state, at)
        users = repository.write_day(
            day, rows, carry_from=previous_day, basis_loaded_seq=basis, mode=MODE_INCREMENTAL
        )
        mode, day_events = MODE_INCREMENTAL, sum(len(chunk) for chunk in day_chunks)
    else:
        state = empty_state()
        day_events = 0
        for chunk in store.read_events(occurred_until=end):
            state = advance_state(state, chunk)
            day_events += int((chunk["occurred_at"] > pd.Timestamp(end - timedelta(days=1))).sum())
        rows = _rows_for(state, at)
        users = repository.write_day(
            day, rows, carry_from=None, basis_loaded_seq=basis, mode=MODE_FROM_SCRATCH
        )
        mode = MODE_FROM_SCRATCH
    return DaySnapshotResult(
        day=day,
        mode=mode,
        users=users,
        recomputed_users=len(rows),
        day_events=day_events,
        summary=repository.summary(day),
    )
