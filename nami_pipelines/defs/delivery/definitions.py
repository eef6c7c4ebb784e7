"""Delivery definitions, built from the integrations file: adding an integration there adds its
partitions to the UI, with no code change (reload the code location to pick it up)."""

from collections.abc import Sequence

import dagster as dg

from nami_pipelines.config import AnyIntegration, load_integrations
from nami_pipelines.defs.delivery.assets import DELIVERIES_KEY, build_delivery_asset
from nami_pipelines.defs.delivery.automation import (
    build_attribute_sync_job,
    build_attribute_sync_schedule,
    build_new_events_sensor,
    build_reconciliation_schedule,
)
from nami_pipelines.defs.delivery.operability import (
    build_lag_check,
    build_lag_check_schedule,
    delivery_failure_sensor,
)

DELIVERIES_JOB = "integration_deliveries_job"


def build_delivery_definitions(integrations: Sequence[AnyIntegration]) -> dg.Definitions:
    if not integrations:
        return dg.Definitions()
    deliveries = build_delivery_asset(integrations)
    job = dg.define_asset_job(DELIVERIES_JOB, selection=[DELIVERIES_KEY])
    sync_job = build_attribute_sync_job(integrations)
    lag_check = build_lag_check(integrations)
    return dg.Definitions(
        assets=[deliveries],
        asset_checks=[lag_check],
        jobs=[job, sync_job],
        sensors=[build_new_events_sensor(DELIVERIES_JOB, integrations), delivery_failure_sensor],
        schedules=[
            build_reconciliation_schedule(DELIVERIES_JOB, integrations),
            build_attribute_sync_schedule(sync_job),
            build_lag_check_schedule(lag_check),
        ],
    )


@dg.definitions
def delivery_definitions() -> dg.Definitions:
    return build_delivery_definitions(load_integrations())
