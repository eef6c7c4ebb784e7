"""Attributes as of each user.* event, from the running state delivery folds each user's events
into, equal the from-scratch snapshot of that user just after that event."""

import json
from datetime import date

import pandas as pd

from nami_pipelines.samples import generate_events
from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES, UserAttributes
from nami_pipelines.snapshots.compute import compute_snapshot, state_from_chunks
from nami_pipelines.snapshots.running import fold_events, running_states
from nami_pipelines.snapshots.state import SnapshotState, empty_state


def attributes_at_events(
    state_before: SnapshotState, events: pd.DataFrame
) -> dict[str, UserAttributes]:
    """Each user's events folded into a running state seeded from `state_before`."""
    users = events["nami_user_id"].dropna().unique().tolist()
    return fold_events(running_states(state_before, users), events)


def generated_frame(users: int, days: int) -> pd.DataFrame:
    records = list(generate_events(users=users, days=days, start=date(2026, 2, 1), seed=21))
    frame = pd.DataFrame(records)
    frame["payload"] = [json.dumps(payload) for payload in frame["payload"]]
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame["loaded_seq"] = range(1, len(frame) + 1)
    return frame


def expected_after(frame: pd.DataFrame, event: pd.Series) -> dict:
    """The from-scratch snapshot of the event's user, counting events up to it in key order."""
    mine = frame[frame["nami_user_id"] == event["nami_user_id"]]
    key_before = (mine["occurred_at"] < event["occurred_at"]) | (
        (mine["occurred_at"] == event["occurred_at"]) & (mine["loaded_seq"] <= event["loaded_seq"])
    )
    row = compute_snapshot(mine[key_before], event["occurred_at"]).iloc[0]
    return {name: row[name] for name in ATTRIBUTE_NAMES}


def test_every_user_event_carries_its_own_moment_attributes():
    frame = generated_frame(40, 12)
    attributes = attributes_at_events(empty_state(), frame)
    user_events = frame[frame["event_type"].str.startswith("user.")]
    assert set(attributes) == set(user_events["event_id"])
    for _, event in user_events.iterrows():
        assert attributes[event["event_id"]] == expected_after(frame, event), event["event_id"]


def test_state_before_the_day_carries_devices_and_payment_history():
    frame = generated_frame(40, 12)
    cut = pd.Timestamp("2026-02-07T00:00:00Z")
    before = frame[frame["occurred_at"] < cut]
    day = frame[frame["occurred_at"] >= cut]
    state = state_from_chunks([before], cut)
    attributes = attributes_at_events(state, day)
    day_user_events = day[day["event_type"].str.startswith("user.")]
    assert len(day_user_events) > 20
    for _, event in day_user_events.iterrows():
        assert attributes[event["event_id"]] == expected_after(frame, event), event["event_id"]


def test_device_events_get_no_attributes():
    frame = generated_frame(10, 5)
    attributes = attributes_at_events(empty_state(), frame)
    device_ids = set(frame.loc[frame["event_type"].str.startswith("device."), "event_id"])
    assert device_ids and not device_ids & set(attributes)
