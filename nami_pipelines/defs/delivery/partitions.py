"""Delivery partitions: one UTC day times one configured integration."""

from collections.abc import Sequence

import dagster as dg

from nami_pipelines.config import AnyIntegration
from nami_pipelines.defs.partitions import daily_partitions

DAY = "day"
INTEGRATION = "integration"
# Dagster tags every run of a multi-partitioned asset with its keys; dagster.yaml limits
# concurrent runs per value of this tag, so one integration's backfill never floods its API.
INTEGRATION_RUN_TAG = f"dagster/partition/{INTEGRATION}"


def delivery_partitions(integrations: Sequence[AnyIntegration]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            DAY: daily_partitions,
            INTEGRATION: dg.StaticPartitionsDefinition([i.name for i in integrations]),
        }
    )


def delivery_key(day: str, integration: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DAY: day, INTEGRATION: integration})
