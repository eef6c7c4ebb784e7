"""The `nami_events` landing table, observed: it is loaded outside Dagster (webhooks, CLI), so a
sensor that is always on records what it holds whenever that changes, and the asset page never
says "Never observed"."""

import json

import dagster as dg

from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.events.store import EventStore

QUARANTINE_PREVIEW_ROWS = 20
EVENTS_OBSERVATION_SENSOR = "nami_events_observation_sensor"
OBSERVATION_INTERVAL_SECONDS = 60
# Dagster's tag for an observation's data version (what `ObserveResult(data_version=...)` sets).
DATA_VERSION_TAG = "dagster/data_version"


def observation_metadata(store: EventStore) -> dict[str, dg.MetadataValue]:
    """What the table holds: rows, the last loaded_seq, quarantine by reason, unsent types."""
    quarantined = store.quarantined_lines(limit=QUARANTINE_PREVIEW_ROWS)
    preview = quarantined[["source", "line_number", "reason"]].to_markdown(index=False)
    return {
        "rows": dg.MetadataValue.int(store.count_events()),
        "max_loaded_seq": dg.MetadataValue.int(store.max_loaded_seq()),
        "quarantined": dg.MetadataValue.int(store.count_quarantined()),
        "quarantined_by_reason": dg.MetadataValue.json(store.quarantined_by_reason()),
        "quarantine_preview": dg.MetadataValue.md(preview or "nothing quarantined"),
        # Types Nami emits that no destination takes (session starts and ends, purchase
        # updates): acknowledged and counted here, never quarantined.
        "not_sent_by_type": dg.MetadataValue.json(store.unsent_counts()),
    }


@dg.observable_source_asset(
    name="nami_events",
    group_name="events",
    description="Nami subscription and paywall events, one row per event (docs/input.md). "
    f"Observed by {EVENTS_OBSERVATION_SENSOR} whenever it changes.",
)
def nami_events(event_store: EventStoreResource) -> dg.ObserveResult:
    store = event_store.store()
    return dg.ObserveResult(
        data_version=dg.DataVersion(str(store.max_loaded_seq())),
        metadata=observation_metadata(store),
    )


def _state(metadata: dict[str, dg.MetadataValue]) -> str:
    """The sensor's cursor: the numbers that change when something is loaded or quarantined."""
    return json.dumps({name: value.value for name, value in metadata.items()}, sort_keys=True)


@dg.sensor(
    name=EVENTS_OBSERVATION_SENSOR,
    minimum_interval_seconds=OBSERVATION_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute, records an observation of nami_events (rows, last loaded_seq, "
    "quarantine by reason, unsent types) when any of them changed. Starts no run.",
)
def nami_events_observation_sensor(
    context: dg.SensorEvaluationContext, event_store: EventStoreResource
) -> dg.SensorResult:
    store = event_store.store()
    metadata = observation_metadata(store)
    state = _state(metadata)
    if state == context.cursor:
        return dg.SensorResult(skip_reason="nami_events unchanged since the last observation")
    observation = dg.AssetObservation(
        asset_key=nami_events.key,
        metadata=metadata,
        tags={DATA_VERSION_TAG: str(metadata["max_loaded_seq"].value)},
    )
    return dg.SensorResult(asset_events=[observation], cursor=state)


@dg.definitions
def events_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[nami_events], sensors=[nami_events_observation_sensor])
