"""The fault soak: at least 50,000 events while the emulators misbehave in every documented way.

Afterwards the accepted events are exactly the expected set, for each integration, and the ledger
agrees with what the emulator recorded. Bounded: one generated day set, fixed fault seeds.
"""

import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from nami_pipelines.config import parse_integrations
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger
from nami_pipelines.delivery.run import deliver_day
from nami_pipelines.destinations.http import RetryPolicy
from nami_pipelines.destinations.outcomes import ACCEPTED, SKIPPED
from nami_pipelines.emulators import FaultRule
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines_tests.conftest import (
    AMPLITUDE_KEYS,
    MPARTICLE_KEYS,
    integrations_document,
    sent_by_hand,
)

SOAK_POLICY = RetryPolicy(max_attempts=30, base_delay=0.01, max_delay=0.2)
MINIMUM_EVENTS = 50_000


def test_fault_soak_delivers_exactly_the_expected_events(
    production_like_store, tmp_path, fresh_emulator, credentials_env
):
    event_store = production_like_store
    start = datetime.now(UTC).date() - timedelta(days=4)
    source = tmp_path / "soak.ndjson"
    write_events_ndjson(source, users=24_000, days=3, start=start, seed=31)
    load_ndjson_file(source, event_store)
    document = integrations_document(fresh_emulator.url, PRODUCTION_APP_ID)
    document["integrations"][0]["platform"] = "all"  # the feed takes every platform's events
    integrations = {i.name: i for i in parse_integrations(document)}
    fresh_emulator.configure(record_payloads=True)
    fresh_emulator.inject_faults(
        FaultRule(kind="server_error", rate=0.05, status=500, processed_share=0.5),
        FaultRule(kind="server_error", rate=0.05, status=502, processed_share=0.5),
        FaultRule(kind="server_error", rate=0.05, status=503),
        FaultRule(kind="server_error", rate=0.05, status=504, processed_share=0.5),
        FaultRule(kind="throttle", rate=0.05, retry_after=1),
        FaultRule(kind="throttle", rate=0.05, retry_after=None),
        FaultRule(kind="slow", rate=0.05, delay_seconds=0.3),
        FaultRule(kind="drop", rate=0.03, processed_share=0.5),
        FaultRule(kind="too_large", rate=0.03),
        seed=2026,
    )
    ledger = DeliveryLedger(event_store.engine)
    repository = SnapshotRepository(event_store.engine)
    days = [start + timedelta(days=offset) for offset in range(3)]
    started = time.monotonic()
    for name in ("ios_feed", "amplitude_prod"):
        integration = integrations[name]
        client = client_for(integration, policy=SOAK_POLICY, throttle_hold_seconds=0.5)
        for day in days:
            report = deliver_day(
                store=event_store,
                repository=repository,
                ledger=ledger,
                integration=integration,
                client=client,
                day=day,
            )
            assert report.unresolved == 0, report
    assert time.monotonic() - started < 600

    stats = fresh_emulator.stats()
    faults = sum(
        stats[api]["faults"].get(label, 0)
        for api in ("mparticle", "amplitude")
        for label in stats[api]["faults"]
    )
    assert faults > 100, stats["mparticle"]["faults"]
    events = pd.concat(list(event_store.read_events()))
    for name, api, credential in (
        ("ios_feed", "mparticle", MPARTICLE_KEYS["ios_feed"][0]),
        ("amplitude_prod", "amplitude", AMPLITUDE_KEYS["amplitude_prod"]),
    ):
        # Both take every event of the app: the feed was set to `platform: all` above.
        expected = sent_by_hand(events, PRODUCTION_APP_ID, platforms=None)
        assert len(expected) >= MINIMUM_EVENTS / 2
        entries = ledger.entries(name)
        assert {row["event_id"] for row in entries} == expected
        assert not [row for row in entries if row["status"] == PENDING]
        accepted = {row["event_id"] for row in entries if row["status"] == ACCEPTED}
        skipped = {row["event_id"] for row in entries if row["status"] == SKIPPED}
        assert accepted | skipped == expected
        records = [r for r in fresh_emulator.received(api) if r["credential"] == credential]
        received = [
            r["event"]["data"]["source_message_id"]
            if api == "mparticle"
            else r["event"]["insert_id"]
            for r in records
        ]
        assert sorted(received) == sorted(accepted), name
        assert stats[api]["per_credential"][credential]["unique_events"] == len(accepted)
    total = sum(len(ledger.entries(name)) for name in ("ios_feed", "amplitude_prod"))
    assert total >= MINIMUM_EVENTS
    print(
        f"\nsoak: {total} events to 2 integrations in {time.monotonic() - started:.0f}s; "
        f"faults {stats['mparticle']['faults']} / {stats['amplitude']['faults']}; "
        f"duplicates absorbed by dedup: mParticle {stats['mparticle']['duplicate_events']}, "
        f"Amplitude {stats['amplitude']['duplicate_events']}"
    )
