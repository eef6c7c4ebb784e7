"""Delivering days through real HTTP to the emulators: exactly the selected events, once."""

import threading
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from nami_pipelines.config import parse_integrations
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger, delivery_claims
from nami_pipelines.delivery.run import deliver_day
from nami_pipelines.destinations.http import RetryPolicy
from nami_pipelines.destinations.outcomes import ACCEPTED, CredentialsRejected
from nami_pipelines.emulators import FaultRule
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines.snapshots.attributes import FLAG_ATTRIBUTES
from nami_pipelines.snapshots.current import state_of_users_at
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines.snapshots.state import materialize_snapshot
from nami_pipelines_tests.builders import EventLog
from nami_pipelines_tests.conftest import (
    AMPLITUDE_KEYS,
    MPARTICLE_KEYS,
    PLATFORMS_SENT,
    integrations_document,
    sent_by_hand,
)

FAST = RetryPolicy(max_attempts=12, base_delay=0.01, max_delay=0.2)
DAYS = 3


@pytest.fixture
def world(event_store, tmp_path, fresh_emulator, credentials_env):
    """Recent generated days loaded, the three demo integrations pointed at the emulator."""
    start = datetime.now(UTC).date() - timedelta(days=DAYS + 1)
    source = tmp_path / "events.ndjson"
    write_events_ndjson(source, users=70, days=DAYS, start=start, seed=4)
    load_ndjson_file(source, event_store)
    integrations = {
        integration.name: integration
        for integration in parse_integrations(
            integrations_document(fresh_emulator.url, PRODUCTION_APP_ID)
        )
    }
    return {
        "store": event_store,
        "repository": SnapshotRepository(event_store.engine),
        "ledger": DeliveryLedger(event_store.engine),
        "integrations": integrations,
        "days": [start + timedelta(days=offset) for offset in range(DAYS)],
        "emulator": fresh_emulator,
    }


def deliver(world, name: str, day: date, **options):
    integration = world["integrations"][name]
    return deliver_day(
        store=world["store"],
        repository=world["repository"],
        ledger=world["ledger"],
        integration=integration,
        client=client_for(integration, policy=FAST, throttle_hold_seconds=0.3),
        day=day,
        **options,
    )


def demo_integration(emulator, name: str):
    """One of the demo integrations, pointed at `emulator`."""
    document = integrations_document(emulator.url, PRODUCTION_APP_ID)
    return next(i for i in parse_integrations(document) if i.name == name)


def deliver_from(store, integration, day: date, **options):
    """`deliver_day` from a store of the test's own (outside the `world` fixture)."""
    return deliver_day(
        store=store,
        repository=SnapshotRepository(store.engine),
        ledger=DeliveryLedger(store.engine),
        integration=integration,
        client=client_for(integration, policy=FAST),
        day=day,
        **options,
    )


def expected_event_ids(world, name: str) -> set[str]:
    """The selection written out by hand (`PLATFORMS_SENT`): all events, filtered here."""
    frame = pd.concat(list(world["store"].read_events()))
    return sent_by_hand(frame, PRODUCTION_APP_ID, PLATFORMS_SENT[name])


def received_ids(emulator, api: str, credential: str) -> list[str]:
    records = [r for r in emulator.received(api) if r["credential"] == credential]
    if api == "mparticle":
        return [r["event"]["data"]["source_message_id"] for r in records]
    return [r["event"]["insert_id"] for r in records]


def test_every_selected_event_reaches_each_integration_once(world):
    emulator = world["emulator"]
    for name in world["integrations"]:
        for day in world["days"]:
            report = deliver(world, name, day)
            assert report.unresolved == 0
    ledger = world["ledger"]
    for name, integration in world["integrations"].items():
        entries = ledger.entries(name)
        assert {row["event_id"] for row in entries} == expected_event_ids(world, name)
        assert not [row for row in entries if row["status"] == PENDING]
        accepted = {row["event_id"] for row in entries if row["status"] == ACCEPTED}
        api, credential = (
            ("mparticle", MPARTICLE_KEYS[name][0])
            if integration.type == "mparticle"
            else ("amplitude", AMPLITUDE_KEYS[name])
        )
        received = received_ids(emulator, api, credential)
        assert sorted(received) == sorted(accepted), name
        assert len(accepted) > 20
    # The Android feed keys users by external id: users without one are skipped, with the reason.
    skipped = [row for row in ledger.entries("android_feed") if row["status"] == "skipped"]
    assert skipped and all("external_id" in row["reason"] for row in skipped)


def test_rerunning_a_day_sends_nothing_again(world):
    emulator = world["emulator"]
    day = world["days"][1]
    first = deliver(world, "amplitude_prod", day)
    requests_after_first = emulator.stats()["amplitude"]["requests"]
    again = deliver(world, "amplitude_prod", day)
    assert first.accepted > 0
    assert again.already_done == again.selected == first.selected
    assert (again.accepted, again.requests, again.attribute_updates) == (0, 0, 0)
    assert emulator.stats()["amplitude"]["requests"] == requests_after_first
    resent = deliver(world, "amplitude_prod", day, resend=True)
    assert resent.accepted == first.accepted
    assert emulator.stats()["amplitude"]["duplicate_events"] == first.accepted


def test_profiles_end_at_the_current_attributes(world):
    for day in world["days"]:
        deliver(world, "ios_feed", day)
    now = datetime.now(UTC)
    profiles = {
        profile["user"]: profile["attributes"]
        for profile in world["emulator"].profiles("mparticle")
        if profile["credential"] == MPARTICLE_KEYS["ios_feed"][0]
    }
    assert len(profiles) > 10
    state = state_of_users_at(world["store"], world["repository"], sorted(profiles), now)
    current = materialize_snapshot(state, pd.Timestamp(now)).set_index("nami_user_id")
    for user, attributes in profiles.items():
        expected = current.loc[user]
        for name in FLAG_ATTRIBUTES:
            assert attributes[name] == ("true" if expected[name] else "false"), (user, name)
        assert attributes["namiml_active_skus"] == expected["namiml_active_skus"], user


def test_server_errors_throttling_and_dropped_connections_lose_nothing(world):
    emulator = world["emulator"]
    emulator.inject_faults(
        FaultRule(kind="server_error", rate=0.25, status=503),
        FaultRule(kind="server_error", rate=0.1, status=500, processed_share=0.5),
        FaultRule(kind="throttle", rate=0.15, retry_after=0),
        FaultRule(kind="drop", rate=0.05),
        seed=7,
    )
    for name in ("ios_feed", "amplitude_prod"):
        reports = [deliver(world, name, day) for day in world["days"]]
        assert sum(report.retries for report in reports) > 0, reports
        assert sum(report.unresolved for report in reports) == 0
    for name, api, credential in (
        ("ios_feed", "mparticle", MPARTICLE_KEYS["ios_feed"][0]),
        ("amplitude_prod", "amplitude", AMPLITUDE_KEYS["amplitude_prod"]),
    ):
        accepted = {
            row["event_id"] for row in world["ledger"].entries(name) if row["status"] == ACCEPTED
        }
        assert set(received_ids(emulator, api, credential)) == accepted


def test_amplitude_partial_rejection_dead_letters_exactly_those_events(world):
    emulator = world["emulator"]
    emulator.inject_faults(
        FaultRule(kind="partial_reject", rate=1.0, api="amplitude", count=2, items=3), seed=1
    )
    report = deliver(world, "amplitude_prod", world["days"][2])
    rejected = [r for r in world["ledger"].entries("amplitude_prod") if r["status"] == "rejected"]
    assert report.rejected == len(rejected) == 6
    assert all("events_with_invalid_fields" in row["reason"] for row in rejected)
    accepted = {
        row["event_id"]
        for row in world["ledger"].entries("amplitude_prod")
        if row["status"] == ACCEPTED
    }
    received = received_ids(emulator, "amplitude", AMPLITUDE_KEYS["amplitude_prod"])
    assert sorted(received) == sorted(accepted)
    assert not {row["event_id"] for row in rejected} & set(received)


def test_refused_credentials_stop_the_integration_and_mark_nothing_sent(world, monkeypatch):
    monkeypatch.setenv("IOS_FEED_SECRET", "wrong-secret-value-123")
    with pytest.raises(CredentialsRejected) as raised:
        deliver(world, "ios_feed", world["days"][0], chunk_rows=20)  # several chunks
    message = str(raised.value)
    assert "ios_feed" in message and "403" in message
    assert "wrong-secret-value-123" not in message and MPARTICLE_KEYS["ios_feed"][0] not in message
    entries = world["ledger"].entries("ios_feed")
    assert ACCEPTED not in {row["status"] for row in entries}
    assert world["emulator"].stats()["mparticle"]["unique_events"] == 0
    # Nothing stays leased: the refused requests give their events back at once, with the reason.
    assert entries and {row["status"] for row in entries} == {PENDING}
    assert all("403" in row["reason"] for row in entries)
    with world["ledger"].engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(delivery_claims)).scalar() == 0


def test_concurrent_runs_for_one_day_never_send_an_event_twice(world):
    day = world["days"][1]
    reports = []

    def run() -> None:
        reports.append(deliver(world, "ios_feed", day))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = world["emulator"].stats()["mparticle"]
    assert stats["duplicate_events"] == 0
    assert sum(report.accepted for report in reports) == stats["unique_events"] > 0


def test_days_older_than_30_days_use_the_historical_endpoint(
    event_store, tmp_path, fresh_emulator, credentials_env
):
    old_start = datetime.now(UTC).date() - timedelta(days=60)
    source = tmp_path / "old.ndjson"
    write_events_ndjson(source, users=30, days=1, start=old_start, seed=2)
    load_ndjson_file(source, event_store)
    report = deliver_from(event_store, demo_integration(fresh_emulator, "ios_feed"), old_start)
    assert report.historical and report.accepted > 0
    historical = fresh_emulator.stats()["mparticle"]["historical"]
    assert historical["unique_events"] == report.accepted
    # Old events do not carry profiles forward; the closing attribute update does (live path).
    assert report.attribute_updates > 0


def test_forced_413s_are_split_and_every_event_still_arrives(world):
    emulator = world["emulator"]
    emulator.inject_faults(FaultRule(kind="too_large", rate=1.0, count=3), seed=3)
    for name in ("ios_feed", "amplitude_prod"):
        report = deliver(world, name, world["days"][0])
        assert report.unresolved == 0
    responses = {**emulator.stats()["mparticle"]["responses"]}
    responses.update({f"a{k}": v for k, v in emulator.stats()["amplitude"]["responses"].items()})
    assert sum(v for k, v in responses.items() if k.endswith("413")) == 3
    for name, api, credential in (
        ("ios_feed", "mparticle", MPARTICLE_KEYS["ios_feed"][0]),
        ("amplitude_prod", "amplitude", AMPLITUDE_KEYS["amplitude_prod"]),
    ):
        accepted = {r["event_id"] for r in world["ledger"].entries(name) if r["status"] == ACCEPTED}
        assert set(received_ids(emulator, api, credential)) == accepted


def test_a_heavy_user_beyond_30_events_per_second_is_resent_in_waves(world, tmp_path):
    log = EventLog()
    day = world["days"][0]
    for n in range(45):
        record = log.device_event(
            "heavy-user",
            "device.impression",
            f"{day}T10:{n // 60:02d}:{n % 60:02d}+00:00",
            device="heavy-device-0001",
            external_id="heavy-external-id",
        )
        record["app_id"] = PRODUCTION_APP_ID
        record["event_id"] = f"heavy-{n:03d}"
    (tmp_path / "heavy.ndjson").write_text(log.ndjson())
    load_ndjson_file(tmp_path / "heavy.ndjson", world["store"])
    report = deliver(world, "amplitude_prod", day)
    assert report.throttled >= 1 and report.unresolved == 0
    heavy = [
        r for r in world["ledger"].entries("amplitude_prod") if r["event_id"].startswith("heavy")
    ]
    assert len(heavy) == 45 and {r["status"] for r in heavy} == {ACCEPTED}


def test_no_credential_in_logs_or_errors_after_a_run_with_failures(world, caplog, monkeypatch):
    import logging

    caplog.set_level(logging.DEBUG)
    world["emulator"].inject_faults(
        FaultRule(kind="server_error", rate=0.3, status=502),
        FaultRule(kind="drop", rate=0.1),
        seed=5,
    )
    for name in world["integrations"]:
        deliver(world, name, world["days"][0])
    monkeypatch.setenv("AMPLITUDE_PROD_API_KEY", "refused-key-9f8e7d")
    with pytest.raises(CredentialsRejected) as raised:
        deliver(world, "amplitude_prod", world["days"][1])
    secrets = [key for pair in MPARTICLE_KEYS.values() for key in pair]
    secrets += [*AMPLITUDE_KEYS.values(), "refused-key-9f8e7d"]
    reasons = " ".join(
        str(row["reason"])
        for name in world["integrations"]
        for row in world["ledger"].entries(name)
    )
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in str(raised.value)
        assert secret not in reasons


def test_an_entitlement_expiring_with_no_event_reaches_the_profile(
    event_store, tmp_path, fresh_emulator, credentials_env
):
    from nami_pipelines.delivery.attribute_sync import sync_expired_attributes
    from nami_pipelines.snapshots.daily import materialize_day

    now = datetime.now(UTC)
    day = (now - timedelta(days=2)).date()
    log = EventLog()
    record = log.user_event(
        "expiring-user",
        "user.journey.trial.started",
        f"{day}T08:00:00+00:00",
        entitlements=[("premium", "premium_weekly", (now - timedelta(hours=1)).isoformat())],
        in_trial_period=True,
    )
    record["app_id"] = PRODUCTION_APP_ID
    (tmp_path / "trial.ndjson").write_text(log.ndjson())
    load_ndjson_file(tmp_path / "trial.ndjson", event_store)
    integration = demo_integration(fresh_emulator, "ios_feed")
    deliver_from(event_store, integration, day, now=now - timedelta(hours=2))
    repository = SnapshotRepository(event_store.engine)
    common = {"store": event_store, "repository": repository, "integration": integration}

    def profile() -> dict:
        (found,) = [p for p in fresh_emulator.profiles("mparticle") if p["user"] == "expiring-user"]
        return found["attributes"]

    assert profile()["namiml_in_trial_period"] == "true"
    materialize_day(event_store, repository, day)
    client = client_for(integration, policy=FAST)
    assert sync_expired_attributes(**common, client=client, now=now) == 1
    assert profile()["namiml_in_trial_period"] == "false"
    assert profile()["namiml_active_entitlements"] == []
    assert sync_expired_attributes(**common, client=client, now=now) == 0


def test_old_days_use_amplitudes_batch_api_where_configured(
    event_store, tmp_path, fresh_emulator, credentials_env
):
    old_start = datetime.now(UTC).date() - timedelta(days=45)
    source = tmp_path / "old.ndjson"
    write_events_ndjson(source, users=20, days=1, start=old_start, seed=6)
    load_ndjson_file(source, event_store)
    document = integrations_document(fresh_emulator.url, PRODUCTION_APP_ID)
    document["integrations"][2]["use_batch_api_for_backfills"] = True
    integration = parse_integrations(document)[2]
    report = deliver_from(event_store, integration, old_start)
    endpoints = {record["endpoint"] for record in fresh_emulator.received("amplitude")}
    assert report.historical and report.accepted > 0
    assert endpoints == {"/batch"}
