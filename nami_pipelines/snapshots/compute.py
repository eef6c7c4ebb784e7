"""Snapshots (docs/attributes.md) from scratch: all users' `namiml_*` attributes at an instant."""

from collections.abc import Iterable

import pandas as pd

from nami_pipelines.events.model import USER
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.state import (
    SnapshotState,
    advance_state,
    empty_state,
    materialize_snapshot,
)


def as_instant(value: str | pd.Timestamp) -> pd.Timestamp:
    """An instant in UTC; a time without an offset is refused rather than guessed."""
    instant = pd.Timestamp(value)
    if instant.tzinfo is None:
        raise ValueError(f"instant {value!s} has no UTC offset")
    return instant.tz_convert("UTC")


def state_from_chunks(chunks: Iterable[pd.DataFrame], at: pd.Timestamp) -> SnapshotState:
    """Fold event chunks into a state, keeping only events at or before `at`."""
    state = empty_state()
    for chunk in chunks:
        state = advance_state(state, chunk[chunk["occurred_at"] <= at])
    return state


def compute_snapshot(events: pd.DataFrame, at: str | pd.Timestamp) -> pd.DataFrame:
    """Every user's attributes at `at` from a frame of events (columns of `nami_events`)."""
    instant = as_instant(at)
    return materialize_snapshot(state_from_chunks([events], instant), instant)


def snapshot_from_store(store: EventStore, at: str | pd.Timestamp) -> pd.DataFrame:
    """The same, streaming the event table in chunks of whole users instead of loading it
    whole: each chunk is folded on its own, so the work follows the events rather than
    re-sorting every user seen so far for each chunk."""
    instant = as_instant(at)
    parts = [
        compute_snapshot(chunk, instant)
        for chunk in store.read_events_grouped_by_user(occurred_until=instant.to_pydatetime())
    ]
    if not parts:
        return materialize_snapshot(empty_state(), instant)
    return pd.concat(parts, ignore_index=True).sort_values(USER, ignore_index=True)
