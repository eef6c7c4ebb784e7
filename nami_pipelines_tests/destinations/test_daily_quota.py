"""Amplitude's daily quota: once a user is past it, Amplitude answers 429 with
`exceeded_daily_quota_users` and would refuse that user's events all day. They stay pending with
the reason (not retried this run, never dead-lettered); the other events of the request go
through; a later run, once the quota is back, sends them."""

from datetime import UTC, datetime, timedelta

from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines_tests.builders import APP_ID, EventLog
from nami_pipelines_tests.destinations.delivery_world import DeliveryWorld, amplitude_entry

HEAVY, LIGHT = "nami-user-heavy", "nami-user-light"


def test_events_of_a_user_past_the_daily_quota_stay_pending_until_a_later_run(
    event_store, fresh_emulator, credentials_env, tmp_path
):
    day = datetime.now(UTC).date() - timedelta(days=1)
    log = EventLog()
    for minute in range(5):
        at = f"{day.isoformat()}T10:{minute:02d}:00+00:00"
        log.user_event(HEAVY, "user.subscription.renewed", at, external_id="customer-heavy")
    for minute in range(2):
        at = f"{day.isoformat()}T11:{minute:02d}:00+00:00"
        log.user_event(LIGHT, "user.subscription.renewed", at, external_id="customer-light")
    source = tmp_path / "quota.ndjson"
    source.write_text(log.ndjson())
    load_ndjson_file(source, event_store)
    world = DeliveryWorld(event_store, DeliveryLedger(event_store.engine), fresh_emulator, day)
    integration = world.integration(amplitude_entry(fresh_emulator.url, app_id=APP_ID))
    fresh_emulator.configure(amplitude_daily_id_quota=3)
    try:
        first = world.deliver(integration)
        first_received = [r["event"]["user_id"] for r in fresh_emulator.received("amplitude")]
        responses = fresh_emulator.stats()["amplitude"]["responses"]
        entries = world.ledger.entries("amplitude_prod")
    finally:
        fresh_emulator.configure(amplitude_daily_id_quota=0)

    assert sorted(first_received) == ["customer-light", "customer-light"]
    assert (first.accepted, first.unresolved, first.rejected) == (2, 5, 0)
    assert responses.get("429") == 1, responses  # not retried in this run
    held = [row for row in entries if row["status"] == "pending"]
    assert len(held) == 5
    assert {row["reason"] for row in held} == {
        "HTTP 429: Amplitude's daily quota is spent for user customer-heavy; "
        "not retried until a later run"
    }
    assert {row["status"] for row in entries if row not in held} == {"accepted"}

    fresh_emulator.reset()  # a new day: the quota is back
    second = world.deliver(integration)
    assert second.accepted == 5
    assert (
        sorted(r["event"]["user_id"] for r in fresh_emulator.received("amplitude"))
        == ["customer-heavy"] * 5
    )
    assert world.statuses("amplitude_prod") == {"accepted": 7}
