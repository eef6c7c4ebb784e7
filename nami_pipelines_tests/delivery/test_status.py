"""`nami-pipelines status` on a fixed ledger: counts, reasons, days, the oldest pending event and
the quarantine by reason, as text and as JSON. No credential is set: status needs none."""

import json
from datetime import UTC, date, datetime

import pytest
import yaml

from nami_pipelines.cli import main
from nami_pipelines.delivery.ledger import Candidate, DeliveryLedger
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, OutcomeGroup
from nami_pipelines.events.store import EventStore
from nami_pipelines_tests.builders import APP_ID, EventLog

NAME = "amp"


@pytest.fixture
def fixed_ledger(database_url, tmp_path, monkeypatch):
    """Seven selected events over three days and one of another app; two accepted, one
    rejected, two skipped, one left pending by a failed send, one never attempted; three
    quarantined lines (two with the same reason); three events of types no destination takes
    (one of them twice)."""
    monkeypatch.setenv("NAMI_EVENTS_DB_URL", database_url)
    monkeypatch.delenv("AMP_API_KEY", raising=False)
    log = EventLog()
    times = [
        "2026-03-10T08:00:00+00:00",
        "2026-03-10T09:00:00+00:00",
        "2026-03-10T10:00:00+00:00",
        "2026-03-11T08:00:00+00:00",
        "2026-03-11T09:00:00+00:00",
        "2026-03-11T10:00:00+00:00",
        "2026-03-12T08:00:00+00:00",
    ]
    for n, at in enumerate(times):
        log.device_event(f"user-{n}", "device.impression", at, device=f"device-{n}")
    other = log.device_event("user-x", "device.impression", times[0], device="device-x")
    other["app_id"] = "another-app"
    events = tmp_path / "events.ndjson"
    bad_lines = 'not json\nnot json either\n{"event_id": "q-1"}\n'
    unsent = [("s-1", "device.session.start"), ("s-1", "device.session.start")]
    unsent += [("s-2", "device.session.end"), ("p-1", "purchase.updated")]
    unsent_lines = "".join(
        json.dumps(
            {
                "event_id": event_id,
                "event_type": kind,
                "occurred_at": times[0],
                "app_id": APP_ID,
                "app_platform_id": "platform-1",
                "platform_type": "apple",
                "nami_user_id": "user-0",
                "external_id": None,
                "device_id": "device-0",
                "environment": "production",
                "payload": {},
            }
        )
        + "\n"
        for event_id, kind in unsent
    )
    events.write_text(log.ndjson() + bad_lines + unsent_lines)
    assert main(["load", str(events)]) == 0
    store = EventStore(database_url)
    ledger = DeliveryLedger(store.engine)
    ids = [record["event_id"] for record in log.records]
    days = [date(2026, 3, 10)] * 3 + [date(2026, 3, 11)] * 3
    ledger.claim(
        NAME,
        [Candidate(i, f"user-{n}", day) for n, (i, day) in enumerate(zip(ids, days, strict=False))],
        worker="w",
    )
    ledger.record(
        NAME,
        [
            OutcomeGroup(ACCEPTED, None, (ids[0],)),
            OutcomeGroup(ACCEPTED, None, (ids[1],)),
            OutcomeGroup(REJECTED, "user_id is too short", (ids[2],)),
            OutcomeGroup(SKIPPED, "no external id", (ids[3],)),
            OutcomeGroup(SKIPPED, "no external id", (ids[4],)),
        ],
        worker="w",
    )
    ledger.release(NAME, [ids[5]], worker="w", reason="connection refused", attempts=3)
    integrations = tmp_path / "integrations.yaml"
    integrations.write_text(
        yaml.safe_dump(
            {
                "integrations": [
                    {
                        "name": NAME,
                        "type": "amplitude",
                        "app_id": APP_ID,
                        "credentials": {"api_key_env": "AMP_API_KEY"},
                    }
                ]
            }
        )
    )
    monkeypatch.setenv("NAMI_INTEGRATIONS_FILE", str(integrations))
    store.engine.dispose()
    return ids


def test_status_json_gives_each_number_of_a_fixed_ledger(fixed_ledger, capsys):
    capsys.readouterr()
    before = datetime.now(UTC)
    assert main(["status", "--json"]) == 0
    after = datetime.now(UTC)
    document = json.loads(capsys.readouterr().out)
    (item,) = document["integrations"]
    assert item["name"] == NAME
    assert item["days_delivered"] == ["2026-03-10"]
    assert item["days_with_pending"] == ["2026-03-11"]
    counts = [item[key] for key in ("selected", "accepted", "rejected", "skipped", "pending")]
    assert counts == [7, 2, 1, 2, 2]
    assert item["top_rejected_reasons"] == [{"reason": "user_id is too short", "events": 1}]
    assert item["top_skipped_reasons"] == [{"reason": "no external id", "events": 2}]
    assert item["pending_reason"] == "connection refused"
    oldest = item["oldest_pending"]
    assert oldest["event_id"] == fixed_ledger[5]
    assert datetime.fromisoformat(oldest["occurred_at"]) == datetime(2026, 3, 11, 10, tzinfo=UTC)
    occurred = datetime(2026, 3, 11, 10, tzinfo=UTC)
    low, high = (before - occurred).total_seconds(), (after - occurred).total_seconds()
    assert low - 1 <= oldest["age_seconds"] <= high
    quarantined = document["quarantined"]
    assert sum(row["events"] for row in quarantined) == 3
    assert quarantined[0]["events"] == 2 and "JSON" in quarantined[0]["reason"]
    assert document["not_sent_by_type"] == {
        "device.session.end": 1,
        "device.session.start": 1,
        "purchase.updated": 1,
    }


def test_status_text_prints_the_same_numbers(fixed_ledger, capsys):
    capsys.readouterr()
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{NAME} (amplitude)"
    assert "  days delivered: 2026-03-10" in lines
    assert "  days with pending events: 2026-03-11" in lines
    assert "  selected 7, accepted 2, rejected 1, skipped 2, pending 2" in lines
    assert "  rejected: user_id is too short (1)" in lines
    assert "  skipped: no external id (2)" in lines
    oldest = next(line for line in lines if line.startswith("  oldest pending:"))
    assert fixed_ledger[5] in oldest and "2026-03-11T10:00:00+00:00" in oldest
    assert oldest.endswith("old, connection refused)")
    assert "quarantined rows: 3" in lines
    not_sent = lines[lines.index("received, not sent to any destination (by type):") + 1 :]
    assert not_sent == [
        "  device.session.end: 1",
        "  device.session.start: 1",
        "  purchase.updated: 1",
    ]
