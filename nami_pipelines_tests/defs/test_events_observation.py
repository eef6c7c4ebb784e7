"""`nami_events` is observed with nobody clicking: the sensor (on by default) records what the
table holds, once per change, and starts no run."""

import json

import dagster as dg

from nami_pipelines.defs.events.assets import nami_events_observation_sensor
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines_tests.builders import EventLog


def tick(resource: EventStoreResource, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, resources={"event_store": resource})
    return nami_events_observation_sensor(context)


def observed(result: dg.SensorResult) -> dict:
    (observation,) = result.asset_events
    assert observation.asset_key == dg.AssetKey("nami_events")
    return {name: value.value for name, value in observation.metadata.items()}


def test_the_sensor_is_on_by_default_and_starts_no_run():
    assert nami_events_observation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert not nami_events_observation_sensor.targets


def test_each_change_is_observed_once_with_rows_seq_and_quarantine_by_reason(event_store, tmp_path):
    resource = EventStoreResource(database_url=event_store.url)
    log = EventLog()
    for n in range(3):
        log.user_event(f"user-{n}", "user.subscription.renewed", f"2026-03-0{n + 1}T10:00:00+00:00")
    source = tmp_path / "events.ndjson"
    source.write_text(log.ndjson() + json.dumps({"event_id": "broken"}) + "\n")
    load_ndjson_file(source, event_store)

    first = tick(resource, None)
    metadata = observed(first)
    assert metadata["rows"] == 3
    assert metadata["max_loaded_seq"] == 3
    assert metadata["quarantined"] == 1
    ((reason, lines),) = metadata["quarantined_by_reason"].items()
    assert lines == 1 and reason
    assert first.asset_events[0].tags["dagster/data_version"] == "3"

    unchanged = tick(resource, first.cursor)
    assert not unchanged.asset_events and unchanged.skip_reason is not None

    more = EventLog()
    more.user_event("user-9", "user.subscription.renewed", "2026-03-05T10:00:00+00:00")
    more.records[0]["event_id"] = "evt-late-0001"
    (tmp_path / "more.ndjson").write_text(more.ndjson())
    load_ndjson_file(tmp_path / "more.ndjson", event_store)
    changed = tick(resource, first.cursor)
    assert (observed(changed)["rows"], observed(changed)["max_loaded_seq"]) == (4, 4)
