"""The incremental daily snapshot equals the from-scratch one, on generated data and both DBs."""

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import generate_events
from nami_pipelines.snapshots.compute import snapshot_from_store
from nami_pipelines.snapshots.daily import (
    MODE_FROM_SCRATCH,
    MODE_INCREMENTAL,
    day_end,
    materialize_day,
)
from nami_pipelines.snapshots.repository import SnapshotRepository, SnapshotSummary
from nami_pipelines.snapshots.tables import user_attribute_snapshots
from nami_pipelines_tests.builders import EventLog

START = date(2026, 2, 1)


def write_generated(path: Path, users: int, days: int, *, shuffle_seed: int | None = None) -> Path:
    records = list(generate_events(users=users, days=days, start=START, seed=11))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(records)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def assert_same_as_from_scratch(store, repository, day: date) -> None:
    expected_frame = snapshot_from_store(store, pd.Timestamp(day_end(day)))
    stored = repository.read_snapshot(day).to_dict("records")
    expected = expected_frame.to_dict("records")
    assert len(stored) == len(expected)
    mismatched = [pair for pair in zip(stored, expected, strict=True) if pair[0] != pair[1]]
    assert not mismatched, f"{day}: first difference {mismatched[0]}"
    # The day's counts are kept incrementally: they must match the snapshot they describe.
    assert repository.summary(day) == SnapshotSummary(
        users=len(expected_frame),
        active_subscribers=int((expected_frame["namiml_active_entitlements"].str.len() > 0).sum()),
        in_trial=int(expected_frame["namiml_in_trial_period"].sum()),
        in_grace_period=int(expected_frame["namiml_in_grace_period"].sum()),
        former_subscribers=int(expected_frame["namiml_former_subscriber"].sum()),
    ), day


def test_incremental_days_equal_from_scratch_on_generated_data(event_store, tmp_path):
    # Loaded in a shuffled order: "latest" must follow occurred_at, not load order.
    load_ndjson_file(write_generated(tmp_path / "g.ndjson", 150, 21, shuffle_seed=3), event_store)
    repository = SnapshotRepository(event_store.engine)
    modes = []
    for offset in range(22):
        day = START + timedelta(days=offset)
        result = materialize_day(event_store, repository, day)
        modes.append(result.mode)
        assert_same_as_from_scratch(event_store, repository, day)
    assert modes[0] == MODE_FROM_SCRATCH
    assert set(modes[1:]) == {MODE_INCREMENTAL}
    # Some attributes must have changed with no event (expiry), or this test proves less.
    last = repository.read_snapshot(START + timedelta(days=21))
    assert last["namiml_former_subscriber"].any()


def test_incremental_day_recomputes_only_touched_and_expiring_users(event_store, tmp_path):
    log = EventLog()
    for user in ("quiet", "busy", "expiring"):
        log.user_event(
            user,
            "user.subscription.purchased",
            "2026-02-01T08:00:00+00:00",
            entitlements=[("p", "s", "2026-02-03T12:00:00+00:00" if user == "expiring" else None)],
        )
    log.device_event("busy", "device.impression", "2026-02-03T09:00:00+00:00", device="d-busy")
    load_ndjson_file(write_lines(tmp_path / "rules.ndjson", log.ndjson()), event_store)
    repository = SnapshotRepository(event_store.engine)
    materialize_day(event_store, repository, date(2026, 2, 1))
    materialize_day(event_store, repository, date(2026, 2, 2))
    third = materialize_day(event_store, repository, date(2026, 2, 3))
    assert third.mode == MODE_INCREMENTAL
    assert (third.users, third.recomputed_users, third.day_events) == (3, 2, 1)
    snapshot = repository.read_snapshot(date(2026, 2, 3)).set_index("nami_user_id")
    assert snapshot.loc["expiring", "namiml_active_entitlements"] == []
    assert snapshot.loc["expiring", "namiml_former_subscriber"]
    assert snapshot.loc["busy", "namiml_device_ids"] == ["d-busy"]
    assert snapshot.loc["quiet", "namiml_active_entitlements"] == ["p"]


def test_a_day_stores_only_its_recomputed_users_and_reads_earlier_rows_for_the_rest(
    event_store, tmp_path
):
    load_ndjson_file(write_generated(tmp_path / "g.ndjson", 80, 6), event_store)
    repository = SnapshotRepository(event_store.engine)
    days = [START + timedelta(days=offset) for offset in range(6)]
    results = {day: materialize_day(event_store, repository, day) for day in days[3:]}
    results |= {day: materialize_day(event_store, repository, day) for day in days[:3]}
    # Day 4 was first computed from scratch (every user stored), now from day 3: only the users
    # it recomputes are stored, and the days after it, computed on the old rows, read the same.
    results[days[3]] = materialize_day(event_store, repository, days[3])
    assert results[days[3]].mode == MODE_INCREMENTAL
    for day in days:
        table = user_attribute_snapshots
        query = sa.select(sa.func.count()).where(table.c.partition_date == day)
        with event_store.engine.connect() as connection:
            stored_rows = connection.execute(query).scalar()
        assert stored_rows == results[day].recomputed_users
        assert_same_as_from_scratch(event_store, repository, day)
    assert results[days[3]].recomputed_users < results[days[3]].users
    expiring = repository.users_expiring(days[2], day_end(days[5]))
    snapshot = repository.read_rows(days[2]).set_index("nami_user_id")
    upcoming = snapshot["next_expiration"] <= pd.Timestamp(day_end(days[5]))
    assert expiring and sorted(expiring) == sorted(snapshot.index[upcoming])
    assert repository.read_snapshot(START - timedelta(days=1)).empty


def test_late_event_makes_later_days_stale_and_rematerializing_restores_them(event_store, tmp_path):
    load_ndjson_file(write_generated(tmp_path / "g.ndjson", 40, 5), event_store)
    repository = SnapshotRepository(event_store.engine)
    days = [START + timedelta(days=offset) for offset in range(5)]
    for day in days:
        materialize_day(event_store, repository, day)
    log = EventLog()
    log.user_event(
        "late-user",
        "user.subscription.purchased",
        "2026-02-02T12:00:00+00:00",
        entitlements=[("premium", "premium_annual", None)],
    )
    load_ndjson_file(write_lines(tmp_path / "late.ndjson", log.ndjson()), event_store)
    stale = [day for day in days if repository.is_stale(repository.day_record(day), day_end(day))]
    assert stale == days[1:]
    for day in days[1:]:
        materialize_day(event_store, repository, day)
        assert_same_as_from_scratch(event_store, repository, day)
    final = repository.read_snapshot(days[-1]).set_index("nami_user_id")
    assert final.loc["late-user", "namiml_active_skus"] == ["premium_annual"]


def test_a_day_after_a_stale_day_is_computed_from_scratch(event_store, tmp_path):
    load_ndjson_file(write_generated(tmp_path / "g.ndjson", 30, 3), event_store)
    repository = SnapshotRepository(event_store.engine)
    materialize_day(event_store, repository, START)
    log = EventLog()
    log.user_event("late", "user.subscription.purchased", "2026-02-01T05:00:00+00:00")
    load_ndjson_file(write_lines(tmp_path / "late.ndjson", log.ndjson()), event_store)
    result = materialize_day(event_store, repository, START + timedelta(days=1))
    assert result.mode == MODE_FROM_SCRATCH
    assert_same_as_from_scratch(event_store, repository, START + timedelta(days=1))


def write_lines(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
