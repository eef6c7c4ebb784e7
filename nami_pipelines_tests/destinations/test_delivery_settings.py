"""Settings as users write them, proven by delivering a real day to the emulator: endpoint URLs
copied from the docs, a Starter project's 10 events per request and its events per second, and
placeholder ids that count as missing."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines_tests.builders import APP_ID, EventLog
from nami_pipelines_tests.destinations.delivery_world import (
    DeliveryWorld,
    amplitude_entry,
    delivery_world,
    mparticle_entry,
)

ALL_ZEROS = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def world(event_store, fresh_emulator, credentials_env, tmp_path):
    return delivery_world(event_store, fresh_emulator, tmp_path)


def test_the_documented_endpoint_urls_deliver(world):
    """`…/2/httpapi` and `…/v2/` as pasted from the docs (the emulator stands in for the host)."""
    amplitude = world.integration(amplitude_entry(f"{world.emulator.url}/2/httpapi"))
    mparticle = world.integration(mparticle_entry(f"{world.emulator.url}/v2/"))

    amplitude_report = world.deliver(amplitude)
    mparticle_report = world.deliver(mparticle)

    stats = world.emulator.stats()
    assert amplitude_report.accepted == stats["amplitude"]["unique_events"] > 0
    assert mparticle_report.accepted == stats["mparticle"]["unique_events"] > 0
    assert "pending" not in world.statuses("amplitude_prod")
    assert "pending" not in world.statuses("ios_feed")


def test_a_starter_project_gets_at_most_10_events_per_request(world):
    entry = amplitude_entry(world.emulator.url, delivery={"events_per_request": 10})

    report = world.deliver(world.integration(entry))

    per_request = Counter(record["request"] for record in world.emulator.received("amplitude"))
    assert report.accepted == sum(per_request.values()) > 20
    assert max(per_request.values()) <= 10
    assert len(per_request) >= report.accepted / 10


def test_the_configured_project_rate_is_honoured(
    event_store, fresh_emulator, credentials_env, tmp_path
):
    """The emulator refuses (429) anything over 100 events/s for the project; the integration
    says so in its settings and is paced from its first request, so it never meets a 429."""
    world = delivery_world(event_store, fresh_emulator, tmp_path, users=100)
    fresh_emulator.configure(amplitude_project_eps=100)
    try:
        entry = amplitude_entry(
            fresh_emulator.url, delivery={"events_per_request": 10, "events_per_second": 100}
        )
        report = world.deliver(world.integration(entry))
        stats = fresh_emulator.stats()["amplitude"]
    finally:
        fresh_emulator.configure(amplitude_project_eps=0)
    assert report.accepted == stats["unique_events"] > 150  # over a second's allowance
    assert "429" not in stats["responses"]
    assert stats["requests"] == sum(stats["responses"].values())


def placeholder_world(event_store, fresh_emulator, tmp_path) -> DeliveryWorld:
    """Three users whose external id is a placeholder (the docs' all-zero example among them),
    one real external id, and a device event whose device id is the all-zero IDFA."""
    day = datetime.now(UTC).date() - timedelta(days=1)
    at = f"{day.isoformat()}T10:00:00+00:00"
    log = EventLog()
    for user, external_id in [
        ("nami-user-0001", ALL_ZEROS),
        ("nami-user-0002", "null"),
        ("nami-user-0003", "N/A"),
        ("nami-user-0004", "customer-4711"),
    ]:
        log.user_event(user, "user.subscription.purchased", at, external_id=external_id)
    log.device_event(None, "device.impression", at, device=ALL_ZEROS)
    source = tmp_path / "placeholders.ndjson"
    source.write_text(log.ndjson())
    load_ndjson_file(source, event_store)
    return DeliveryWorld(event_store, DeliveryLedger(event_store.engine), fresh_emulator, day)


def reasons_by_event(world: DeliveryWorld, name: str) -> dict[str, tuple[str, str | None]]:
    return {row["event_id"]: (row["status"], row["reason"]) for row in world.ledger.entries(name)}


def test_placeholder_ids_fall_back_to_the_nami_user_id(
    event_store, fresh_emulator, credentials_env, tmp_path
):
    world = placeholder_world(event_store, fresh_emulator, tmp_path)
    integration = world.integration(amplitude_entry(fresh_emulator.url, app_id=APP_ID))

    world.deliver(integration)

    sent = {r["event"]["insert_id"]: r["event"] for r in fresh_emulator.received("amplitude")}
    assert {event_id: event["user_id"] for event_id, event in sent.items()} == {
        "evt-000001": "nami-user-0001",
        "evt-000002": "nami-user-0002",
        "evt-000003": "nami-user-0003",
        "evt-000004": "customer-4711",
    }
    assert reasons_by_event(world, "amplitude_prod")["evt-000005"] == (
        "skipped",
        "no external_id and no nami_user_id for user_id; device_id "
        "'00000000-0000-0000-0000-000000000000' is a placeholder",
    )
    assert fresh_emulator.stats()["amplitude"]["rejected"]["requests"] == 0


def test_placeholder_ids_without_fallback_are_skipped_naming_the_placeholder(
    event_store, fresh_emulator, credentials_env, tmp_path
):
    world = placeholder_world(event_store, fresh_emulator, tmp_path)
    amplitude = world.integration(
        amplitude_entry(fresh_emulator.url, app_id=APP_ID, fallback_to_nami_user_id=False)
    )
    mparticle = world.integration(
        mparticle_entry(fresh_emulator.url, app_id=APP_ID, customer_id="external_id")
    )

    world.deliver(amplitude)
    world.deliver(mparticle)

    for name, field in [("amplitude_prod", "user_id"), ("ios_feed", "customer_id")]:
        outcomes = reasons_by_event(world, name)
        assert outcomes["evt-000004"] == ("accepted", None)
        for event_id, placeholder in [
            ("evt-000001", ALL_ZEROS),
            ("evt-000002", "null"),
            ("evt-000003", "N/A"),
        ]:
            status, reason = outcomes[event_id]
            assert status == "skipped"
            assert reason.startswith(
                f"external_id '{placeholder}' is a placeholder for {field} "
                "and fallback_to_nami_user_id is off"
            )
    mparticle_users = {r["user"] for r in fresh_emulator.received("mparticle")}
    amplitude_users = {r["user"] for r in fresh_emulator.received("amplitude")}
    assert mparticle_users == amplitude_users == {"customer-4711"}
