"""The state of a few users at an instant equals the from-scratch snapshot, whatever is stored."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import write_events_ndjson
from nami_pipelines.snapshots.compute import snapshot_from_store
from nami_pipelines.snapshots.current import state_of_users_at
from nami_pipelines.snapshots.daily import day_end, materialize_day
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines.snapshots.state import materialize_snapshot

START = date(2026, 2, 1)


def test_state_of_some_users_matches_from_scratch_with_and_without_stored_days(
    event_store, tmp_path
):
    source = tmp_path / "events.ndjson"
    write_events_ndjson(source, users=60, days=6, start=START, seed=9)
    load_ndjson_file(source, event_store)
    repository = SnapshotRepository(event_store.engine)
    instants = [
        datetime(2026, 2, 4, 13, 30, tzinfo=UTC),
        day_end(date(2026, 2, 3)),
        datetime(2026, 2, 7, tzinfo=UTC),
    ]
    for stored_days in (0, 4):
        for offset in range(stored_days):
            materialize_day(event_store, repository, START + timedelta(days=offset))
        for at in instants:
            expected = snapshot_from_store(event_store, pd.Timestamp(at))
            users = expected["nami_user_id"].tolist()[::3]
            state = state_of_users_at(event_store, repository, users, at)
            actual = materialize_snapshot(state, pd.Timestamp(at))
            wanted = expected[expected["nami_user_id"].isin(users)].reset_index(drop=True)
            assert actual.to_dict("records") == wanted.to_dict("records"), (stored_days, at)
