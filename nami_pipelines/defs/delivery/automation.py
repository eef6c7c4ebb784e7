"""What starts deliveries without a click: a sensor on newly loaded events, a daily
reconciliation of the day before, and a half-hourly attribute sync for changes no event carries
(an entitlement that simply expires)."""

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from nami_pipelines.config import AnyIntegration
from nami_pipelines.defs.automation_switch import schedule_default, sensor_default
from nami_pipelines.defs.delivery.assets import INTEGRATION_TAG, deliveries_key
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.delivery.attribute_sync import sync_expired_attributes
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.destinations.selection import event_filter

SENSOR_INTERVAL_VARIABLE = "NAMI_SENSOR_INTERVAL_SECONDS"
DEFAULT_SENSOR_INTERVAL = 30
SENSOR_ROWS_PER_TICK = 200_000


def delivery_request(day: str, integration: str, run_key: str) -> dg.RunRequest:
    """One day of one integration's asset, tagged with the integration for the run list."""
    return dg.RunRequest(
        run_key=run_key,
        partition_key=day,
        asset_selection=[deliveries_key(integration)],
        tags={INTEGRATION_TAG: integration},
    )


def partitions_touched(
    arrived: pd.DataFrame, integrations: Sequence[AnyIntegration]
) -> list[tuple[str, str]]:
    """(day, integration) pairs that received events the integration selects."""
    touched: set[tuple[str, str]] = set()
    for integration in integrations:
        if not integration.enabled:
            continue
        mine = arrived[event_filter(integration).matches(arrived)]
        touched.update((day.isoformat(), integration.name) for day in mine["day"].unique())
    return sorted(touched)


def build_new_events_sensor(
    job_name: str, integrations: Sequence[AnyIntegration]
) -> dg.SensorDefinition:
    interval = int(os.environ.get(SENSOR_INTERVAL_VARIABLE, DEFAULT_SENSOR_INTERVAL))

    @dg.sensor(
        name="new_events_sensor",
        job_name=job_name,
        minimum_interval_seconds=interval,
        default_status=sensor_default(),
        description="Requests a run of deliveries/<integration> for each day that received "
        "events the integration selects; "
        "late events land in their own day. Cursor: the last loaded_seq seen (the first tick "
        "starts at the current one and requests today and yesterday).",
    )
    def new_events_sensor(
        context: dg.SensorEvaluationContext, event_store: EventStoreResource
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        store = event_store.store()
        if context.cursor is None:
            # First tick: start from what is loaded now rather than replaying all history (a
            # backfill's job); today and yesterday are requested so recent events still go out.
            reached = store.max_loaded_seq()
            today = datetime.now(UTC).date()
            for day in (today - timedelta(days=1), today):
                for integration in integrations:
                    if integration.enabled:
                        yield delivery_request(
                            day.isoformat(), integration.name, f"{integration.name}:{day}:{reached}"
                        )
            context.update_cursor(str(reached))
            return
        cursor = int(context.cursor)
        arrived, reached = store.loaded_since(cursor, limit=SENSOR_ROWS_PER_TICK)
        if reached == cursor:
            yield dg.SkipReason(f"no events loaded after loaded_seq {cursor}")
            return
        for day, name in partitions_touched(arrived, integrations):
            yield delivery_request(day, name, f"{name}:{day}:{reached}")
        context.update_cursor(str(reached))

    return new_events_sensor


def build_reconciliation_schedule(
    job_name: str, integrations: Sequence[AnyIntegration]
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_reconciliation_schedule",
        cron_schedule="0 1 * * *",
        job_name=job_name,
        execution_timezone="UTC",
        default_status=schedule_default(),
        description="Re-runs yesterday of every enabled integration's asset, one run each; the "
        "ledger skips what was sent.",
    )
    def daily_reconciliation_schedule(
        context: dg.ScheduleEvaluationContext,
    ) -> list[dg.RunRequest]:
        day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
        return [
            delivery_request(day, integration.name, f"reconcile:{integration.name}:{day}")
            for integration in integrations
            if integration.enabled
        ]

    return daily_reconciliation_schedule


def build_attribute_sync_job(integrations: Sequence[AnyIntegration]) -> dg.JobDefinition:
    @dg.op(
        name="sync_expired_attributes",
        retry_policy=dg.RetryPolicy(max_retries=2, delay=60),
        description="Sends attribute updates to users whose attributes changed with no event.",
    )
    def sync_op(context: dg.OpExecutionContext, event_store: EventStoreResource) -> None:
        store = event_store.store()
        now = datetime.now(UTC)
        for integration in integrations:
            if not integration.enabled:
                continue
            updated = sync_expired_attributes(
                store=store,
                repository=event_store.snapshots(),
                integration=integration,
                client=client_for(integration),
                now=now,
            )
            context.log.info(f"{integration.name}: {updated} attribute updates sent")

    @dg.job(name="attribute_sync_job", tags={"nami/kind": "attribute_sync"})
    def attribute_sync_job() -> None:
        sync_op()

    return attribute_sync_job


def build_attribute_sync_schedule(job: dg.JobDefinition) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="attribute_sync_schedule",
        job=job,
        cron_schedule="*/30 * * * *",
        execution_timezone="UTC",
        default_status=schedule_default(),
        description="Every 30 minutes: profiles catch up with expirations that had no event.",
    )
