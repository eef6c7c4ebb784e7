"""Runs (day, integration) delivery partitions through Dagster from a script: what the CLI's
backfill and the demo use, recorded in the instance like runs launched from the UI."""

from collections.abc import Callable, Sequence
from datetime import date

import dagster as dg

from nami_pipelines.config import AnyIntegration
from nami_pipelines.defs.delivery.assets import DELIVERIES_KEY, RESEND_TAG
from nami_pipelines.defs.delivery.definitions import build_delivery_definitions
from nami_pipelines.defs.delivery.partitions import delivery_key
from nami_pipelines.defs.resources import event_store_resource

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_metadata(result: dg.ExecuteInProcessResult, node: str) -> dict:
    """A successful run's materialization metadata as plain values."""
    if not result.success:
        raise RuntimeError(f"the Dagster run for {node} failed")
    materialization = result.asset_materializations_for_node(node)[0]
    return {key: value.value for key, value in materialization.metadata.items()}


def backfill_deliveries(
    integrations: Sequence[AnyIntegration],
    days: Sequence[date],
    *,
    instance: dg.DagsterInstance,
    resend: bool = False,
    on_partition: Callable[[date, str, dict], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Each (day, integration) in day order; returns the numeric metadata summed per integration."""
    deliveries = dg.Definitions.merge(
        build_delivery_definitions(integrations),
        dg.Definitions(resources={"event_store": event_store_resource()}),
    ).get_assets_def(DELIVERIES_KEY)
    totals: dict[str, dict[str, int]] = {integration.name: {} for integration in integrations}
    for day in days:
        for integration in integrations:
            result = dg.materialize(
                [deliveries],
                partition_key=delivery_key(day.isoformat(), integration.name),
                instance=instance,
                resources={"event_store": event_store_resource()},
                run_config=QUIET_RUN_CONFIG,
                tags={RESEND_TAG: "true"} if resend else None,
            )
            metadata = run_metadata(result, "integration_deliveries")
            if on_partition is not None:
                on_partition(day, integration.name, metadata)
            total = totals[integration.name]
            for name, value in metadata.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    total[name] = total.get(name, 0) + value
    return totals
