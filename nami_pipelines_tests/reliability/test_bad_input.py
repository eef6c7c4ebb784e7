"""Bad input end to end: every malformed row is quarantined or skipped with its reason, every good
row around it is delivered, and oversize values are trimmed to the APIs' limits, not rejected."""

import json
from datetime import UTC, datetime, timedelta

from nami_pipelines.config import parse_integrations
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.run import deliver_day
from nami_pipelines.destinations.http import RetryPolicy
from nami_pipelines.destinations.outcomes import ACCEPTED
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import PRODUCTION_APP_ID, generate_events
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS, MPARTICLE_KEYS, integrations_document
from nami_pipelines_tests.events.test_loader import BAD_LINES

FAST = RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=0.1)


def oversize_records(day: str) -> list[dict]:
    """Good events with values beyond the APIs' limits: they must arrive, trimmed."""
    huge_name = {
        "event_id": "oversize-impression-0001",
        "event_type": "device.impression",
        "occurred_at": f"{day}T12:00:00+00:00",
        "app_id": PRODUCTION_APP_ID,
        "app_platform_id": "8d0f2b8e-1c1f-4a53-9d43-3f0a5b1c2e11",
        "platform_type": "apple",
        "nami_user_id": "oversize-user-0001",
        "external_id": "oversize-external-0001",
        "device_id": "oversize-device-0001",
        "environment": "production",
        "payload": {"id": "imp-1", "name": "N" * 10_000, "developer_paywall_id": "p" * 6_000},
    }
    many_entitlements = {
        **huge_name,
        "event_id": "oversize-purchase-0001",
        "event_type": "user.subscription.purchased",
        "device_id": None,
        "payload": {
            "active_entitlements": [
                {
                    "entitlement_ref_id": f"ent-{n:05d}" + ("-" + "e" * 700 if n < 2 else ""),
                    "sku_ref_id": f"sku-{n}",
                    "expiration": None,
                }
                for n in range(1_500)
            ],
            "customer_journey_state": {},
            "devices": [],
        },
    }
    return [huge_name, many_entitlements]


def test_bad_rows_are_quarantined_and_every_good_row_around_them_is_delivered(
    event_store, tmp_path, fresh_emulator, credentials_env
):
    day = datetime.now(UTC).date() - timedelta(days=2)
    good = list(generate_events(users=150, days=1, start=day, seed=17))
    lines: list[str] = []
    for position, (bad, _) in enumerate(BAD_LINES):
        lines.append(json.dumps(good[position]))
        lines.append(
            bad
            if isinstance(bad, str)
            else json.dumps(bad)
            if isinstance(bad, dict)
            else bad.decode("latin-1")
        )
    lines += [json.dumps(record) for record in good[len(BAD_LINES) :]]
    lines += [json.dumps(record) for record in oversize_records(day.isoformat())]
    source = tmp_path / "mixed.ndjson"
    with source.open("wb") as handle:
        for line in lines:
            handle.write(line.encode("latin-1") if "\xff" in line else line.encode())
            handle.write(b"\n")
    summary = load_ndjson_file(source, event_store)
    assert summary.quarantined == len(BAD_LINES) >= 15
    assert summary.loaded == len(good) + 2
    reasons = event_store.quarantined_lines()["reason"].tolist()
    assert all(expected in reason for reason, (_, expected) in zip(reasons, BAD_LINES, strict=True))

    integrations = parse_integrations(integrations_document(fresh_emulator.url, PRODUCTION_APP_ID))
    ledger = DeliveryLedger(event_store.engine)
    for integration in integrations:
        report = deliver_day(
            store=event_store,
            repository=SnapshotRepository(event_store.engine),
            ledger=ledger,
            integration=integration,
            client=client_for(integration, policy=FAST),
            day=day,
        )
        assert report.rejected == 0 and report.unresolved == 0, report.reasons
        entries = ledger.entries(integration.name)
        assert {row["status"] for row in entries} <= {ACCEPTED, "skipped"}
        assert all(row["reason"] for row in entries if row["status"] == "skipped")

    ios = [
        r
        for r in fresh_emulator.received("mparticle")
        if r["credential"] == MPARTICLE_KEYS["ios_feed"][0]
    ]
    impression = next(
        r["event"]
        for r in ios
        if r["event"]["data"]["source_message_id"].startswith("oversize")
        or r["event"]["data"].get("custom_attributes", {}).get("id") == "imp-1"
    )
    attributes = impression["data"]["custom_attributes"]
    assert len(attributes["name"]) == 4096
    profile = next(
        p for p in fresh_emulator.profiles("mparticle") if p["user"] == "oversize-user-0001"
    )
    entitlements = profile["attributes"]["namiml_active_entitlements"]
    assert len(entitlements) == 1000 and max(len(value) for value in entitlements) <= 512
    amplitude = next(
        r["event"]
        for r in fresh_emulator.received("amplitude")
        if r["credential"] == AMPLITUDE_KEYS["amplitude_prod"]
        and r["event"]["insert_id"] == "oversize-impression-0001"
    )
    assert len(amplitude["event_properties"]["name"]) <= 1024
