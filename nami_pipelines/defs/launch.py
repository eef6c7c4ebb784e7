"""How the command line runs Dagster: `backfill`, and the demo's snapshots and deliveries, as
runs recorded in the instance `scripts/dev ui` opens, so they show in the UI like runs launched
from it.

The only module under `defs/` that code outside it imports, and only the commands that run
Dagster do so, when they run it: every other command starts without loading Dagster. It takes
and returns plain values. The arrow runs one way: nothing under `defs/` imports a command.
"""

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import dagster as dg

from nami_pipelines.config import AnyIntegration
from nami_pipelines.defs.delivery.backfill import (
    QUIET_RUN_CONFIG,
    DagsterRunFailed,
    PartitionOutOfRange,
    backfill_deliveries,
    check_days_in_partitions,
    run_metadata,
)
from nami_pipelines.defs.instance import dagster_instance
from nami_pipelines.defs.resources import event_store_resource
from nami_pipelines.defs.snapshots.assets import user_attribute_snapshots

__all__ = [
    "DagsterRunFailed",
    "PartitionOutOfRange",
    "check_days_in_partitions",
    "deliver_days",
    "snapshot_days",
]


def deliver_days(
    integrations: Sequence[AnyIntegration],
    days: Sequence[date],
    *,
    resend: bool = False,
    on_partition: Callable[[date, str, dict], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each (day, integration) delivered in its own run, in day order; per integration, the
    partitions' metadata added up (defs/delivery/backfill.py)."""
    return backfill_deliveries(
        integrations, days, instance=dagster_instance(), resend=resend, on_partition=on_partition
    )


def snapshot_days(days: Sequence[date]) -> list[dict]:
    """The snapshot partitions in order, as the daily schedule would run them; per day, its
    materialization's metadata."""
    instance = dagster_instance()
    return [
        {
            "day": day.isoformat(),
            **run_metadata(
                dg.materialize(
                    [user_attribute_snapshots],
                    partition_key=day.isoformat(),
                    instance=instance,
                    resources={"event_store": event_store_resource()},
                    run_config=QUIET_RUN_CONFIG,
                ),
                "user_attribute_snapshots",
            ),
        }
        for day in days
    ]
