"""What tells an operator something is wrong: a check that flags integrations whose deliveries
are behind, and a sensor that records, on the delivery asset, which integration failed and why."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from nami_pipelines.config import AnyIntegration
from nami_pipelines.defs.delivery.assets import DELIVERIES_KEY
from nami_pipelines.defs.delivery.partitions import INTEGRATION_RUN_TAG
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.delivery.lag import delivery_lag
from nami_pipelines.delivery.ledger import DeliveryLedger

LAG_CHECK = "deliveries_not_behind"
LAG_GRACE = timedelta(hours=1)
LAG_LOOKBACK = timedelta(days=3)


def build_lag_check(integrations: Sequence[AnyIntegration]) -> dg.AssetChecksDefinition:
    # On the events asset, not on the deliveries: a check of the delivered asset would run inside
    # every delivery run and fail there for whichever other integration is behind.
    @dg.asset_check(
        asset=dg.AssetKey("nami_events"),
        name=LAG_CHECK,
        description="Warns when an enabled integration has selected events of the last 3 days, "
        "older than an hour, with no outcome in the ledger.",
    )
    def deliveries_not_behind(event_store: EventStoreResource) -> dg.AssetCheckResult:
        store = event_store.store()
        DeliveryLedger(store.engine)  # the ledger tables exist before they are joined
        now = datetime.now(UTC)
        lags = [
            delivery_lag(store, i, since=now - LAG_LOOKBACK, older_than=now - LAG_GRACE)
            for i in integrations
            if i.enabled
        ]
        behind = [lag for lag in lags if lag.undelivered]
        metadata: dict[str, dg.MetadataValue] = {
            f"{lag.integration}_undelivered": dg.MetadataValue.int(lag.undelivered) for lag in lags
        }
        if behind:
            metadata["behind"] = dg.MetadataValue.text(
                ", ".join(f"{lag.integration} ({lag.undelivered})" for lag in behind)
            )
        return dg.AssetCheckResult(
            passed=not behind, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
        )

    return deliveries_not_behind


def build_lag_check_schedule(check: dg.AssetChecksDefinition) -> dg.ScheduleDefinition:
    job = dg.define_asset_job("deliveries_lag_check_job", selection=dg.AssetSelection.checks(check))
    return dg.ScheduleDefinition(
        name="deliveries_lag_check_schedule",
        job=job,
        cron_schedule="20 * * * *",
        execution_timezone="UTC",
    )


@dg.run_failure_sensor(
    name="delivery_failure_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records a failed delivery run on the delivery asset: integration, partition, why.",
)
def delivery_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    integration = run.tags.get(INTEGRATION_RUN_TAG)
    if integration is None:
        return
    step_errors = [
        event.event_specific_data.error.message.strip()
        for event in context.get_step_failure_events()
        if event.event_specific_data is not None and event.event_specific_data.error is not None
    ]
    reason = "; ".join(step_errors) or context.failure_event.message or "run failed"
    context.instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=DELIVERIES_KEY,
            partition=run.tags.get("dagster/partition"),
            metadata={
                "failed_integration": dg.MetadataValue.text(integration),
                "failure": dg.MetadataValue.text(reason[:2000]),
                "run_id": dg.MetadataValue.text(run.run_id),
            },
        )
    )
    context.log.warning(f"delivery to '{integration}' failed: {reason[:500]}")
