"""Delivery definitions, built from the integrations file: one asset per integration, its
checks, and what runs them. Adding an integration there adds its asset to the UI, with no code
change (reload the code location to pick it up)."""

from collections.abc import Sequence

import dagster as dg

from nami_pipelines.config import AnyIntegration, load_integrations
from nami_pipelines.defs.delivery.assets import build_delivery_asset
from nami_pipelines.defs.delivery.automation import (
    build_attribute_sync_job,
    build_attribute_sync_schedule,
    build_new_events_sensor,
    build_reconciliation_schedule,
)
from nami_pipelines.defs.delivery.operability import (
    build_delivery_failure_sensor,
    build_lag_check,
    build_lag_check_schedule,
)

DELIVERIES_JOB = "deliveries_job"


def build_delivery_definitions(integrations: Sequence[AnyIntegration]) -> dg.Definitions:
    if not integrations:
        return dg.Definitions()
    assets = [build_delivery_asset(integration) for integration in integrations]
    lag_checks = [build_lag_check(integration) for integration in integrations]
    # The sensor and the reconciliation run each asset with its own outcome check; the lag
    # checks run on their hourly schedule (and with the UI's Materialize).
    job = dg.define_asset_job(
        DELIVERIES_JOB,
        selection=dg.AssetSelection.assets(*assets) - dg.AssetSelection.checks(*lag_checks),
        description="Every integration's deliveries; the sensor and schedule run one asset each.",
    )
    sync_job = build_attribute_sync_job(integrations)
    integration_of_step = {
        asset.op.name: integration.name
        for asset, integration in zip(assets, integrations, strict=True)
    }
    return dg.Definitions(
        assets=assets,
        asset_checks=lag_checks,
        jobs=[job, sync_job],
        sensors=[
            build_new_events_sensor(DELIVERIES_JOB, integrations),
            build_delivery_failure_sensor(integration_of_step),
        ],
        schedules=[
            build_reconciliation_schedule(DELIVERIES_JOB, integrations),
            build_attribute_sync_schedule(sync_job),
            build_lag_check_schedule(lag_checks),
        ],
    )


@dg.definitions
def delivery_definitions() -> dg.Definitions:
    return build_delivery_definitions(load_integrations())
