"""Sample Nami events for demos, tests and benchmarks: a tool, apart from the source of real
events (`nami_pipelines.events`), which never imports it."""

from nami_pipelines.samples.catalogue import (
    APP_PLATFORM_IDS,
    PAYWALLS,
    PLATFORMS,
    PRODUCTION_APP_ID,
    SKUS,
    STAGING_APP_ID,
)
from nami_pipelines.samples.generator import generate_events, write_events_ndjson

__all__ = [
    "APP_PLATFORM_IDS",
    "PAYWALLS",
    "PLATFORMS",
    "PRODUCTION_APP_ID",
    "SKUS",
    "STAGING_APP_ID",
    "generate_events",
    "write_events_ndjson",
]
