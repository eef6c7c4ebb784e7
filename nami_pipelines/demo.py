"""The embedded end-to-end run: sample events into SQLite, snapshots through Dagster, a summary."""

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from nami_pipelines.events.store import EventStore
from nami_pipelines.settings import data_dir, events_db_url

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _instance() -> dg.DagsterInstance:
    """The configured instance when DAGSTER_HOME is set (runs then show in the UI), else a
    throw-away one."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def materialize_snapshots(days: list[date], instance: dg.DagsterInstance) -> list[dict]:
    """Materialize the snapshot partitions in order, as the daily schedule would."""
    from nami_pipelines.defs.resources import event_store_resource
    from nami_pipelines.defs.snapshots.assets import user_attribute_snapshots

    summaries = []
    for day in days:
        result = dg.materialize(
            [user_attribute_snapshots],
            partition_key=day.isoformat(),
            instance=instance,
            resources={"event_store": event_store_resource()},
            run_config=QUIET_RUN_CONFIG,
        )
        if not result.success:
            raise RuntimeError(f"snapshot of {day} failed")
        materialization = result.asset_materializations_for_node("user_attribute_snapshots")[0]
        values = {key: value.value for key, value in materialization.metadata.items()}
        summaries.append({"day": day.isoformat(), **values})
    return summaries


def run_demo(*, users: int, days: int, seed: int) -> None:
    from nami_pipelines.cli import load_file_with_progress
    from nami_pipelines.events.generator import write_events_ndjson

    today = datetime.now(UTC).date()
    start = today - timedelta(days=days)
    sample = Path(data_dir()) / "demo" / f"events-{start.isoformat()}-{days}d-{users}u.ndjson"
    sample.parent.mkdir(parents=True, exist_ok=True)
    print(f"event store: {events_db_url().split('@')[-1]}")
    count = write_events_ndjson(
        sample, users=users, days=days, start=start, seed=seed, show_progress=True
    )
    print(f"generated {count} events for {users} users, {start} .. {today - timedelta(days=1)}")
    store = EventStore(events_db_url())
    print(f"load: {load_file_with_progress(sample, store).describe()}")
    instance = _instance()
    summaries = materialize_snapshots([start + timedelta(days=n) for n in range(days)], instance)
    print()
    columns = (
        "day",
        "users",
        "active_subscribers",
        "in_trial",
        "in_grace_period",
        "former_subscribers",
        "day_events",
        "mode",
    )
    print("  ".join(f"{name:>18}" for name in columns))
    for summary in summaries:
        print("  ".join(f"{summary[name]!s:>18}" for name in columns))
