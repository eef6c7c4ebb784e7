"""The Dagster definitions load, and materializing snapshot partitions shows what users see."""

from datetime import date, datetime, timedelta

import dagster as dg

from nami_pipelines.definitions import defs
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.defs.snapshots.assets import (
    ONE_ROW_PER_USER,
    daily_snapshot_request,
    user_attribute_snapshots,
)
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import write_events_ndjson
from nami_pipelines.snapshots.repository import SnapshotRepository

START = date(2026, 2, 1)


def test_definitions_load_with_assets_jobs_and_schedule():
    repository = defs.get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert {"nami_events", "user_attribute_snapshots"} <= keys
    assert repository.has_schedule_def("daily_snapshots_schedule")
    assert repository.get_job("user_attribute_snapshots_job").partitions_def is not None


def test_materializing_days_records_counts_and_passes_the_row_check(event_store, tmp_path):
    source = tmp_path / "events.ndjson"
    write_events_ndjson(source, users=60, days=3, start=START, seed=5)
    load_ndjson_file(source, event_store)
    resource = EventStoreResource(database_url=event_store.url)
    instance = dg.DagsterInstance.ephemeral()
    for offset in range(3):
        key = (START + timedelta(days=offset)).isoformat()
        result = dg.materialize(
            [user_attribute_snapshots],
            partition_key=key,
            instance=instance,
            resources={"event_store": resource},
        )
        assert result.success
        materialization = result.asset_materializations_for_node("user_attribute_snapshots")[0]
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        stored = SnapshotRepository(event_store.engine).read_snapshot(date.fromisoformat(key))
        assert metadata["users"] == len(stored) > 0
        assert metadata["active_subscribers"] == int(
            (stored["namiml_active_entitlements"].str.len() > 0).sum()
        )
        assert metadata["in_trial"] == int(stored["namiml_in_trial_period"].sum())
        assert metadata["mode"] == ("from_scratch" if offset == 0 else "incremental")
        checks = result.get_asset_check_evaluations()
        assert [(c.check_name, c.passed) for c in checks] == [(ONE_ROW_PER_USER, True)]
    # Re-materializing a day replaces it: same rows, not twice as many.
    again = dg.materialize(
        [user_attribute_snapshots],
        partition_key=START.isoformat(),
        instance=instance,
        resources={"event_store": resource},
    )
    first = again.asset_materializations_for_node("user_attribute_snapshots")[0]
    assert first.metadata["users"].value == len(
        SnapshotRepository(event_store.engine).read_snapshot(START)
    )


def test_daily_schedule_asks_for_the_day_that_just_ended():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 2, 10, 0, 15))
    request = daily_snapshot_request(context)
    assert request.partition_key == "2026-02-09"
