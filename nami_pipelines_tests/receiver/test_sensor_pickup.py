"""A row stored through the receiver is picked up by `new_events_sensor` exactly as a loaded row:
both get the next `loaded_seq`, so the sensor's read (`loaded_since`) sees them in arrival order
and requests the days of the integrations' assets they touch. A retry stores nothing, so it
requests nothing."""

import dagster as dg

from nami_pipelines.config import parse_integrations
from nami_pipelines.defs.delivery.definitions import build_delivery_definitions
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines_tests.builders import GOOGLE_PLATFORM, EventLog
from nami_pipelines_tests.conftest import integrations_document
from nami_pipelines_tests.events.nami_body_samples import APP_ID, renewed_body
from nami_pipelines_tests.receiver.support import RunningReceiver, signed_apps

WEBHOOK_DAY = "2026-11-24"  # renewed_body's created_date, on iOS
LOADED_DAY = "2026-11-25"


def requested(result: dg.SensorResult) -> set[tuple[str, str]]:
    """(day, integration): each request is one day of one integration's `deliveries/<name>`."""
    pairs = set()
    for request in result.run_requests:
        (key,) = request.asset_selection
        assert key.path[0] == "deliveries"
        pairs.add((request.partition_key, key.path[1]))
    return pairs


def test_the_sensor_picks_up_a_webhook_row_as_it_picks_up_a_loaded_row(
    event_store, credentials_env, monkeypatch, tmp_path
):
    integrations = parse_integrations(integrations_document("http://127.0.0.1:9", APP_ID))
    resource = EventStoreResource(database_url=event_store.url)
    definitions = dg.Definitions.merge(
        build_delivery_definitions(integrations),
        dg.Definitions(resources={"event_store": resource}),
    )
    repository = definitions.get_repository_def()
    sensor = repository.get_sensor_def("new_events_sensor")

    def tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            cursor=cursor, resources={"event_store": resource}, repository_def=repository
        )
        return sensor.evaluate_tick(context)

    started = tick(None).cursor
    with RunningReceiver(event_store, signed_apps(APP_ID, monkeypatch=monkeypatch)) as receiver:
        assert receiver.post(APP_ID, renewed_body()).json() == {"status": "stored"}
        after_webhook = tick(started)
        assert receiver.post(APP_ID, renewed_body()).json() == {"status": "duplicate"}
        after_retry = tick(after_webhook.cursor)
    # iOS: the iOS feed and the Amplitude project take it, the Android feed does not.
    assert requested(after_webhook) == {
        (WEBHOOK_DAY, "ios_feed"),
        (WEBHOOK_DAY, "amplitude_prod"),
    }
    assert int(after_webhook.cursor) == int(started) + 1
    assert after_retry.run_requests == [] and after_retry.skip_message

    log = EventLog()
    log.user_event(
        "loaded-user",
        "user.subscription.renewed",
        f"{LOADED_DAY}T09:00:00+00:00",
        platform=GOOGLE_PLATFORM,
    )
    log.records[0]["app_id"] = APP_ID
    (tmp_path / "loaded.ndjson").write_text(log.ndjson())
    load_ndjson_file(tmp_path / "loaded.ndjson", event_store)
    after_load = tick(after_webhook.cursor)
    assert requested(after_load) == {
        (LOADED_DAY, "android_feed"),
        (LOADED_DAY, "amplitude_prod"),
    }
    assert int(after_load.cursor) == int(started) + 2

    # Both rows, as the sensor reads them from where it started: one per (day, app, platform,
    # type), in loaded_seq order, up to the position reached.
    arrived, reached = event_store.loaded_since(int(started), limit=100)
    rows = arrived.astype({"day": str}).to_dict("records")
    assert sorted(rows, key=lambda row: row["day"]) == [
        {
            "day": WEBHOOK_DAY,
            "app_id": APP_ID,
            "platform_type": "apple",
            "event_type": "user.subscription.renewed",
            "events": 1,
        },
        {
            "day": LOADED_DAY,
            "app_id": APP_ID,
            "platform_type": "google",
            "event_type": "user.subscription.renewed",
            "events": 1,
        },
    ]
    assert reached == int(started) + 2
