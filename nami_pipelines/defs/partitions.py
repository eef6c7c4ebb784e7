"""Time partitions shared by every domain: one UTC day per partition."""

import os

import dagster as dg

PARTITIONS_START_VARIABLE = "NAMI_PARTITIONS_START_DATE"
DEFAULT_PARTITIONS_START = "2026-01-01"

# end_offset=1 includes today, so near-real-time sends have a partition to land in.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=os.environ.get(PARTITIONS_START_VARIABLE, DEFAULT_PARTITIONS_START),
    end_offset=1,
    timezone="UTC",
)
