"""Deliveries through Dagster: one asset per integration, backfills, the sensor, the checks."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from nami_pipelines.config import IntegrationConfigError, load_integrations, parse_integrations
from nami_pipelines.defs.delivery.assets import EVERY_EVENT_HAS_AN_OUTCOME, deliveries_key
from nami_pipelines.defs.delivery.definitions import (
    build_delivery_definitions,
    delivery_definitions,
)
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.destinations.outcomes import ACCEPTED
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines_tests.builders import EventLog
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS, MPARTICLE_KEYS, integrations_document

ROOT = Path(__file__).resolve().parents[2]
DAYS = 3


@pytest.fixture
def setup(event_store, tmp_path, fresh_emulator, credentials_env):
    start = datetime.now(UTC).date() - timedelta(days=DAYS + 1)
    source = tmp_path / "events.ndjson"
    write_events_ndjson(source, users=50, days=DAYS, start=start, seed=8)
    return delivery_setup(event_store, source, fresh_emulator, PRODUCTION_APP_ID, start)


def delivery_setup(event_store, source: Path, emulator, app_id: str, start) -> dict:
    """The events of `source` loaded and the test integrations (of `app_id`) defined."""
    load_ndjson_file(source, event_store)
    integrations = parse_integrations(integrations_document(emulator.url, app_id))
    resource = EventStoreResource(database_url=event_store.url)
    definitions = dg.Definitions.merge(
        build_delivery_definitions(integrations),
        dg.Definitions(resources={"event_store": resource}),
    )
    repository = definitions.get_repository_def()
    return {
        "store": event_store,
        "integrations": integrations,
        "deliveries": {
            integration.name: definitions.get_assets_def(deliveries_key(integration.name))
            for integration in integrations
        },
        "sensor": repository.get_sensor_def("new_events_sensor"),
        "repository": repository,
        "resource": resource,
        "days": [(start + timedelta(days=n)).isoformat() for n in range(DAYS)],
        "emulator": emulator,
        "instance": dg.DagsterInstance.ephemeral(),
    }


def materialize(setup, day: str, integration: str, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [setup["deliveries"][integration]],
        partition_key=day,
        instance=setup["instance"],
        resources={"event_store": setup["resource"]},
        **kwargs,
    )


def metadata_of(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {key: value.value for key, value in event.materialization.metadata.items()}


def requested(requests: list[dg.RunRequest]) -> set[tuple[str, str]]:
    """(day, integration) of each run request, each for its integration's asset alone."""
    pairs = set()
    for request in requests:
        (key,) = request.asset_selection
        assert key == deliveries_key(request.tags["nami/integration"])
        pairs.add((request.partition_key, request.tags["nami/integration"]))
    return pairs


def test_each_integration_has_its_own_daily_asset_of_its_api(setup):
    repository = setup["repository"]
    keys = set(repository.asset_graph.materializable_asset_keys)
    assert keys == {
        dg.AssetKey(["deliveries", "ios_feed"]),
        dg.AssetKey(["deliveries", "android_feed"]),
        dg.AssetKey(["deliveries", "amplitude_prod"]),
    }
    ios = setup["deliveries"]["ios_feed"]
    assert ios.specs_by_key[ios.key].kinds == {"mparticle"}
    amplitude = setup["deliveries"]["amplitude_prod"]
    assert amplitude.specs_by_key[amplitude.key].kinds == {"amplitude"}
    assert setup["days"][0] in ios.partitions_def.get_partition_keys()
    assert "platform `apple`" in ios.descriptions_by_key[ios.key]
    assert "platform" not in amplitude.descriptions_by_key[amplitude.key]


def test_backfill_three_days_two_integrations_then_rerun_is_idempotent(setup):
    emulator = setup["emulator"]
    for name in ("ios_feed", "amplitude_prod"):
        for day in setup["days"]:
            result = materialize(setup, day, name)
            assert result.success
            metadata = metadata_of(result)
            assert metadata["selected"] == (
                metadata["accepted"] + metadata["rejected"] + metadata["skipped"]
            )
            assert isinstance(metadata["events_per_second"], float)
            checks = result.get_asset_check_evaluations()
            assert [(c.check_name, c.passed) for c in checks] == [
                (EVERY_EVENT_HAS_AN_OUTCOME, True)
            ]
    ledger = DeliveryLedger(setup["store"].engine)
    for name, api, credential in (
        ("ios_feed", "mparticle", MPARTICLE_KEYS["ios_feed"][0]),
        ("amplitude_prod", "amplitude", AMPLITUDE_KEYS["amplitude_prod"]),
    ):
        accepted = sorted(r["event_id"] for r in ledger.entries(name) if r["status"] == ACCEPTED)
        received = [r for r in emulator.received(api) if r["credential"] == credential]
        ids = sorted(
            r["event"]["data"]["source_message_id"]
            if api == "mparticle"
            else r["event"]["insert_id"]
            for r in received
        )
        assert ids == accepted and accepted
    requests_before = emulator.stats()["mparticle"]["requests"]
    again = metadata_of(materialize(setup, setup["days"][0], "ios_feed"))
    assert again["accepted"] == 0 and again["already_sent"] == again["selected"] > 0
    assert emulator.stats()["mparticle"]["requests"] == requests_before


def test_refused_credentials_fail_the_run_without_retries(setup, monkeypatch):
    monkeypatch.setenv("AMPLITUDE_PROD_API_KEY", "not-a-valid-key-000")
    result = materialize(setup, setup["days"][0], "amplitude_prod", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.event_specific_data.error)
    assert "amplitude_prod" in text and "not-a-valid-key-000" not in text
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_sensor_requests_touched_partitions_and_keeps_its_cursor(setup, tmp_path):
    sensor = setup["sensor"]
    resources = {"event_store": setup["resource"]}

    def tick(cursor: str | None) -> dg.SensorResult:
        return sensor.evaluate_tick(
            dg.build_sensor_context(
                cursor=cursor, resources=resources, repository_def=setup["repository"]
            )
        )

    first = tick(None)
    today = datetime.now(UTC).date()
    recent = {(today - timedelta(days=1)).isoformat(), today.isoformat()}
    names = {"ios_feed", "android_feed", "amplitude_prod"}
    assert requested(first.run_requests) == {(day, name) for day in recent for name in names}
    cursor = first.cursor
    assert int(cursor) == setup["store"].max_loaded_seq()
    quiet = tick(cursor)
    assert quiet.run_requests == [] and quiet.skip_message
    # A late event: loaded now, it happened on the first day; only that partition is requested.
    log = EventLog()
    record = log.user_event(
        "late-user", "user.subscription.renewed", f"{setup['days'][0]}T12:00:00+00:00"
    )
    record["app_id"] = PRODUCTION_APP_ID
    (tmp_path / "late.ndjson").write_text(log.ndjson())
    load_ndjson_file(tmp_path / "late.ndjson", setup["store"])
    late = tick(cursor)
    assert requested(late.run_requests) == {
        (setup["days"][0], "ios_feed"),
        (setup["days"][0], "amplitude_prod"),
    }
    assert len({r.run_key for r in late.run_requests}) == 2
    assert int(late.cursor) > int(cursor)


def test_invalid_configuration_fails_at_load_naming_integration_and_field(tmp_path, monkeypatch):
    bad = tmp_path / "integrations.yaml"
    bad.write_text(
        "integrations:\n"
        "  - name: ios_feed\n    type: mparticle\n    app_id: a\n    platform: apple\n"
        "    pod: XX9\n    credentials: {key_env: K, secret_env: S}\n"
    )
    monkeypatch.setenv("NAMI_INTEGRATIONS_FILE", str(bad))
    with pytest.raises(IntegrationConfigError, match=r"integration 'ios_feed': field 'pod'"):
        delivery_definitions()


def test_example_file_is_valid_and_names_no_secret():
    integrations = load_integrations(ROOT / "integrations.example.yaml", check_env=False)
    assert {(i.type, getattr(i, "platform", None)) for i in integrations} >= {
        ("mparticle", "apple"),
        ("mparticle", "google"),
        ("amplitude", None),
    }
    assert {i.endpoint for i in integrations if i.type == "amplitude"} == {"standard", "eu"}


def test_reconciliation_schedule_reruns_yesterday_for_every_enabled_integration(setup):
    from nami_pipelines.defs.delivery.automation import build_reconciliation_schedule

    integrations = [*setup["integrations"]]
    integrations[1] = integrations[1].model_copy(update={"enabled": False})
    schedule = build_reconciliation_schedule("deliveries_job", integrations)
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 2, 1, 0))
    requests = schedule(context)
    assert requested(requests) == {("2026-03-01", "amplitude_prod"), ("2026-03-01", "ios_feed")}


def test_lag_check_flags_integrations_behind_until_they_catch_up(setup):
    from nami_pipelines.defs.delivery.operability import build_lag_check

    by_name = {integration.name: integration for integration in setup["integrations"]}
    ios_feed, android_feed = by_name["ios_feed"], by_name["android_feed"]
    ios_check, android_check = build_lag_check(ios_feed), build_lag_check(android_feed)
    assert {key.asset_key for key in ios_check.check_keys} == {deliveries_key("ios_feed")}
    behind = ios_check(event_store=setup["resource"])
    assert not behind.passed and behind.severity == dg.AssetCheckSeverity.WARN
    assert behind.metadata["undelivered"].value > 0
    for day in setup["days"]:
        assert materialize(setup, day, "ios_feed").success
    caught_up = ios_check(event_store=setup["resource"])
    assert caught_up.passed
    assert caught_up.metadata["undelivered"].value == 0
    # Its own integration only: the Android feed, never run, is still behind.
    assert not android_check(event_store=setup["resource"]).passed


def test_failed_delivery_is_recorded_on_the_asset_with_integration_and_reason(setup, monkeypatch):
    delivery_failure_sensor = setup["repository"].get_sensor_def("delivery_failure_sensor")
    monkeypatch.setenv("AMPLITUDE_PROD_API_KEY", "wrong-key-for-sensor-1")
    # One run holding a day of two integrations, as a UI backfill of both assets starts it.
    result = dg.materialize(
        [setup["deliveries"]["ios_feed"], setup["deliveries"]["amplitude_prod"]],
        partition_key=setup["days"][0],
        instance=setup["instance"],
        resources={"event_store": setup["resource"]},
        raise_on_error=False,
    )
    assert not result.success
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [
        deliveries_key("ios_feed")
    ]
    instance = setup["instance"]
    (failure_record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = failure_record.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name="delivery_failure_sensor",
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
        dagster_event=failure,
    ).for_run_failure()
    delivery_failure_sensor(context)
    # Only the integration that failed: the other one's day was delivered.
    assert not instance.fetch_observations(deliveries_key("ios_feed"), limit=5).records
    records = instance.fetch_observations(deliveries_key("amplitude_prod"), limit=5).records
    metadata = records[0].asset_observation.metadata
    assert metadata["failed_integration"].value == "amplitude_prod"
    assert "refused the API key" in metadata["failure"].value
    assert "wrong-key-for-sensor-1" not in metadata["failure"].value
    assert records[0].asset_observation.partition == setup["days"][0]


def test_skip_reasons_with_counts_are_in_the_metadata_and_the_run_log(
    event_store, tmp_path, fresh_emulator, credentials_env
):
    from nami_pipelines_tests.builders import APP_ID, GOOGLE_PLATFORM

    day = datetime.now(UTC).date() - timedelta(days=2)
    log = EventLog()
    for n in range(5):
        log.user_event(
            f"user-{n}",
            "user.subscription.renewed",
            f"{day}T0{n}:00:00+00:00",
            platform=GOOGLE_PLATFORM,
            external_id=f"customer-{n}" if n < 2 else None,
        )
    source = tmp_path / "events.ndjson"
    source.write_text(log.ndjson())
    setup = delivery_setup(event_store, source, fresh_emulator, APP_ID, day)
    instance = setup["instance"]
    result = materialize(setup, day.isoformat(), "android_feed")
    assert result.success
    metadata = metadata_of(result)
    assert (metadata["selected"], metadata["accepted"], metadata["skipped"]) == (5, 2, 3)
    ((reason, count),) = metadata["skipped_reasons"].items()
    assert count == 3 and "external" in reason
    assert "rejected_reasons" not in metadata
    assert f"| skipped | {reason} | 3 |" in metadata["reasons"]
    messages = [
        record.event_log_entry.user_message
        for record in instance.get_records_for_run(result.run_id).records
    ]
    assert any(
        "android_feed" in message and f"skipped 3: {reason} (3)" in message for message in messages
    )
