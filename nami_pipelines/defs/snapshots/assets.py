"""`user_attribute_snapshots`: every user's `namiml_*` attributes at the end of each UTC day."""

from datetime import date, timedelta

import dagster as dg

from nami_pipelines.defs.automation_switch import schedule_default
from nami_pipelines.defs.partitions import daily_partitions
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.snapshots.daily import day_end, materialize_day

SNAPSHOTS_KEY = dg.AssetKey("user_attribute_snapshots")
ONE_ROW_PER_USER = "one_row_per_user"


@dg.asset(
    key=SNAPSHOTS_KEY,
    group_name="snapshots",
    partitions_def=daily_partitions,
    kinds={"pandas", "sql"},
    deps=[
        dg.AssetKey("nami_events"),
        # Day D starts from day D-1's stored state; the UI shows the chain and orders backfills.
        dg.AssetDep(
            SNAPSHOTS_KEY,
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            ONE_ROW_PER_USER,
            asset=SNAPSHOTS_KEY,
            description="Fails when the day's row count differs from the number of users with "
            "events up to that day, or a user has two rows.",
        )
    ],
    retry_policy=dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL),
    description=(
        "Per-user namiml_* attributes at the end of the day (docs/attributes.md), computed "
        "from the day before plus the day's events; replaces the day when re-materialized."
    ),
)
def user_attribute_snapshots(
    context: dg.AssetExecutionContext, event_store: EventStoreResource
) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    store = event_store.store()
    repository = event_store.snapshots()
    result = materialize_day(store, repository, day)
    context.log.info(
        f"{day}: {result.users} users ({result.mode}, {result.recomputed_users} recomputed "
        f"from {result.day_events} events of the day)"
    )
    expected = repository.users_with_events_until(day_end(day))
    extra_rows = repository.duplicate_user_rows(day)
    summary = result.summary
    return dg.MaterializeResult(
        metadata={
            "users": dg.MetadataValue.int(summary.users),
            "active_subscribers": dg.MetadataValue.int(summary.active_subscribers),
            "in_trial": dg.MetadataValue.int(summary.in_trial),
            "in_grace_period": dg.MetadataValue.int(summary.in_grace_period),
            "former_subscribers": dg.MetadataValue.int(summary.former_subscribers),
            "recomputed_users": dg.MetadataValue.int(result.recomputed_users),
            "day_events": dg.MetadataValue.int(result.day_events),
            "mode": dg.MetadataValue.text(result.mode),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=ONE_ROW_PER_USER,
                passed=summary.users == expected and extra_rows == 0,
                metadata={
                    "rows": dg.MetadataValue.int(summary.users),
                    "users_with_events": dg.MetadataValue.int(expected),
                    "duplicate_rows": dg.MetadataValue.int(extra_rows),
                },
            )
        ],
    )


snapshots_job = dg.define_asset_job(
    "user_attribute_snapshots_job",
    selection=[SNAPSHOTS_KEY],
)


def daily_snapshot_request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Shortly after midnight UTC, the day that just ended."""
    key = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"snapshots-{key}", partition_key=key)


def build_daily_snapshots_schedule() -> dg.ScheduleDefinition:
    """Built when the code location loads, so `NAMI_AUTOMATION` decides its default."""
    return dg.ScheduleDefinition(
        name="daily_snapshots_schedule",
        cron_schedule="15 0 * * *",
        job=snapshots_job,
        execution_fn=daily_snapshot_request,
        execution_timezone="UTC",
        default_status=schedule_default(),
        description="00:15 UTC: the snapshot of the day that just ended.",
    )


@dg.definitions
def snapshot_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[user_attribute_snapshots],
        jobs=[snapshots_job],
        schedules=[build_daily_snapshots_schedule()],
    )
