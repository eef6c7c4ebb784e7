"""What tells an operator something is wrong: a check per integration that flags deliveries
that are behind, and a sensor that records, on the failed integration's asset, which day failed
and why."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from nami_pipelines.config import AnyIntegration
from nami_pipelines.defs.automation_switch import schedule_default
from nami_pipelines.defs.delivery.assets import deliveries_key
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.delivery.lag import delivery_lag
from nami_pipelines.delivery.ledger import DeliveryLedger

LAG_CHECK = "deliveries_not_behind"
LAG_GRACE = timedelta(hours=1)
LAG_LOOKBACK = timedelta(days=3)
LAG_CHECK_JOB = "deliveries_lag_check_job"


def build_lag_check(integration: AnyIntegration) -> dg.AssetChecksDefinition:
    """On the integration's own asset, so the catalog shows which destination is behind. It
    reads only this integration's ledger rows, so running it inside another day's delivery run
    reports this integration and nothing else."""

    @dg.asset_check(
        asset=deliveries_key(integration.name),
        name=LAG_CHECK,
        description=f"Warns when {integration.name} has selected events of the last 3 days, "
        "older than an hour, with no outcome in the ledger (a day not yet run, or events left "
        "pending); the metadata says how many and since when.",
    )
    def deliveries_not_behind(event_store: EventStoreResource) -> dg.AssetCheckResult:
        store = event_store.store()
        DeliveryLedger(store.engine)  # the ledger tables exist before they are joined
        now = datetime.now(UTC)
        if not integration.enabled:
            return dg.AssetCheckResult(
                passed=True, metadata={"disabled": dg.MetadataValue.bool(True)}
            )
        lag = delivery_lag(store, integration, since=now - LAG_LOOKBACK, older_than=now - LAG_GRACE)
        metadata: dict[str, dg.MetadataValue] = {
            "undelivered": dg.MetadataValue.int(lag.undelivered)
        }
        if lag.oldest is not None:
            metadata["oldest_undelivered"] = dg.MetadataValue.text(lag.oldest.isoformat())
        return dg.AssetCheckResult(
            passed=lag.undelivered == 0, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
        )

    return deliveries_not_behind


def build_lag_check_schedule(checks: Sequence[dg.AssetChecksDefinition]) -> dg.ScheduleDefinition:
    job = dg.define_asset_job(LAG_CHECK_JOB, selection=dg.AssetSelection.checks(*checks))
    return dg.ScheduleDefinition(
        name="deliveries_lag_check_schedule",
        job=job,
        cron_schedule="20 * * * *",
        execution_timezone="UTC",
        default_status=schedule_default(),
        description="Hourly: every integration's deliveries_not_behind check.",
    )


def _failed_steps(context: dg.RunFailureSensorContext) -> dict[str, str]:
    """Step key -> its error message, for the steps that failed."""
    return {
        event.step_key: event.event_specific_data.error.message.strip()
        for event in context.get_step_failure_events()
        if event.step_key is not None
        and event.event_specific_data is not None
        and event.event_specific_data.error is not None
    }


def build_delivery_failure_sensor(
    integration_of_step: Mapping[str, str],
) -> dg.SensorDefinition:
    """`integration_of_step`: each delivery asset's step (op) name -> its integration. A run
    may hold several integrations' steps (a backfill of one day for several assets): each
    failed one is recorded on its own asset."""

    @dg.run_failure_sensor(
        name="delivery_failure_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records a failed delivery on its integration's asset: the day and why.",
    )
    def delivery_failure_sensor(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        failed = {
            integration_of_step[step]: reason
            for step, reason in _failed_steps(context).items()
            if step in integration_of_step
        }
        if not failed:
            # The run died before its steps could report (its worker crashed, for one): every
            # delivery asset it was to materialize.
            reason = context.failure_event.message or "run failed"
            selected = run.asset_selection or set()
            failed = {
                name: reason
                for name in integration_of_step.values()
                if deliveries_key(name) in selected
            }
        for integration, reason in failed.items():
            context.instance.report_runless_asset_event(
                dg.AssetObservation(
                    asset_key=deliveries_key(integration),
                    partition=run.tags.get("dagster/partition"),
                    metadata={
                        "failed_integration": dg.MetadataValue.text(integration),
                        "failure": dg.MetadataValue.text(reason[:2000]),
                        "run_id": dg.MetadataValue.text(run.run_id),
                    },
                )
            )
            context.log.warning(f"delivery to '{integration}' failed: {reason[:500]}")

    return delivery_failure_sensor
