"""Loading NDJSON into the event store: counts, idempotence, quarantine reasons, load order."""

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events
from nami_pipelines_tests.builders import EventLog
from nami_pipelines_tests.fixtures import SAMPLE_EVENTS

SAMPLE = SAMPLE_EVENTS


def good_record(event_id: str = "evt-good", **overrides) -> dict:
    log = EventLog()
    record = log.user_event(
        "u1",
        "user.subscription.purchased",
        "2026-02-01T10:00:00+02:00",
        entitlements=[("premium", "premium_monthly", "2026-03-01T10:00:00+00:00")],
    )
    record["event_id"] = event_id
    record.update(overrides)
    return record


def write_lines(path: Path, lines: list[bytes | str | dict]) -> Path:
    with path.open("wb") as handle:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            handle.write(line if isinstance(line, bytes) else line.encode())
            handle.write(b"\n")
    return path


def stored_ids(store: EventStore) -> list[str]:
    with store.engine.connect() as connection:
        query = sa.select(nami_events.c.event_id).order_by(nami_events.c.loaded_seq)
        return list(connection.execute(query).scalars())


BAD_LINES: list[tuple[bytes | str | dict, str]] = [
    ('{"event_id": "x", ', "invalid JSON"),
    (b'{"event_id": "\xff\xfe"}', "not valid UTF-8"),
    ("[1, 2, 3]", "not a JSON object"),
    (good_record("e1", event_type="user.subscription.exploded"), "unknown event_type"),
    (good_record("e2", occurred_at="yesterday"), "occurred_at is not an ISO 8601"),
    (good_record("e3", occurred_at=None), "occurred_at is missing"),
    (good_record("e4", occurred_at="2026-02-01T10:00:00"), "no UTC offset"),
    (good_record("e5", occurred_at="2099-01-01T00:00:00+00:00"), "in the future"),
    (good_record("e6", nami_user_id=None), "user.* event has no nami_user_id"),
    (good_record("e7", payload="not an object"), "payload is not an object"),
    (good_record(None), "event_id is missing"),
    (good_record("e8", environment="staging"), "environment must be"),
    (good_record("e9", nami_user_id=12345), "nami_user_id must be a string"),
    (good_record("e10", nami_user_id="u" * 500), "longer than 128"),
    (
        good_record("e11", payload={"active_entitlements": "premium"}),
        "active_entitlements must be a list",
    ),
    (
        good_record(
            "e12",
            payload={"active_entitlements": [{"entitlement_ref_id": "p", "expiration": "soon"}]},
        ),
        "expiration is not an ISO 8601",
    ),
    (
        good_record("e13", payload={"customer_journey_state": {"in_trial_period": "yes"}}),
        "in_trial_period must be a boolean",
    ),
]


def test_each_bad_line_is_quarantined_with_its_reason_and_good_lines_load(event_store, tmp_path):
    lines = [good_record("before")] + [line for line, _ in BAD_LINES] + [good_record("after")]
    summary = load_ndjson_file(write_lines(tmp_path / "mixed.ndjson", lines), event_store)
    assert (summary.loaded, summary.duplicates, summary.quarantined) == (2, 0, len(BAD_LINES))
    assert stored_ids(event_store) == ["before", "after"]
    quarantined = event_store.quarantined_lines()
    assert quarantined["line_number"].tolist() == list(range(2, 2 + len(BAD_LINES)))
    for reason, (_, expected) in zip(quarantined["reason"], BAD_LINES, strict=True):
        assert expected in reason


def test_transaction_with_nan_or_negative_price_is_quarantined(event_store, tmp_path):
    log = EventLog()
    payload = {"sku_ref_id": "s", "price": 9.99, "currency": "USD", "quantity": 1}
    prices = {"ok": "9.99", "nan": "NaN", "neg": "-1"}
    for event_id in prices:
        record = log.device_event("u1", "device.transaction", "2026-02-01T00:00:00Z", device="d1")
        record["event_id"] = event_id
        record["payload"] = {**payload, "price": "__PRICE__"}
    lines = [
        json.dumps(record).replace('"__PRICE__"', prices[record["event_id"]])
        for record in log.records
    ]
    summary = load_ndjson_file(write_lines(tmp_path / "tx.ndjson", lines), event_store)
    assert (summary.loaded, summary.quarantined) == (1, 2)
    assert set(event_store.quarantined_lines()["reason"]) == {
        "payload.price must be a finite, non-negative number"
    }


def test_loading_the_same_file_twice_adds_nothing(event_store):
    first = load_ndjson_file(SAMPLE, event_store)
    second = load_ndjson_file(SAMPLE, event_store)
    assert (first.loaded, first.duplicates, first.quarantined) == (15, 0, 0)
    assert (second.loaded, second.duplicates, second.quarantined) == (0, 15, 0)
    assert event_store.count_events() == 15


def test_same_id_with_different_content_is_quarantined_not_overwritten(event_store, tmp_path):
    load_ndjson_file(write_lines(tmp_path / "a.ndjson", [good_record("dup")]), event_store)
    changed = good_record("dup", external_id="someone-else")
    summary = load_ndjson_file(write_lines(tmp_path / "b.ndjson", [changed]), event_store)
    assert (summary.loaded, summary.duplicates, summary.quarantined) == (0, 0, 1)
    reasons = event_store.quarantined_lines()["reason"].tolist()
    assert reasons == ["duplicate event_id with different content"]
    stored = next(event_store.read_events())
    assert stored["external_id"].tolist() == [None]


def test_loaded_seq_increases_in_load_order_across_loads(event_store, tmp_path):
    first = [good_record(f"a{n}") for n in range(3)]
    second = [good_record(f"b{n}") for n in range(2)]
    load_ndjson_file(write_lines(tmp_path / "1.ndjson", first), event_store)
    load_ndjson_file(write_lines(tmp_path / "2.ndjson", second), event_store)
    frame = next(event_store.read_events())
    assert frame["event_id"].tolist() == ["a0", "a1", "a2", "b0", "b1"]
    sequence = frame["loaded_seq"].tolist()
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    assert event_store.max_loaded_seq() == sequence[-1]


def test_timestamps_are_stored_in_utc(event_store, tmp_path):
    load_ndjson_file(write_lines(tmp_path / "tz.ndjson", [good_record("tz")]), event_store)
    frame = next(event_store.read_events())
    assert frame["occurred_at"].iloc[0].isoformat() == "2026-02-01T08:00:00+00:00"


@pytest.mark.parametrize("chunk_rows", [1, 4])
def test_reads_stream_in_bounded_chunks(event_store, chunk_rows):
    load_ndjson_file(SAMPLE, event_store)
    chunks = list(event_store.read_events(chunk_rows=chunk_rows))
    assert all(len(chunk) <= chunk_rows for chunk in chunks)
    assert sum(len(chunk) for chunk in chunks) == 15


@pytest.mark.parametrize("chunk_rows", [1, 4])
def test_reads_grouped_by_user_never_split_a_user(event_store, chunk_rows, tmp_path):
    load_ndjson_file(SAMPLE, event_store)
    log = EventLog()
    for device in ("anonymous-1", "anonymous-2"):
        log.device_event(None, "device.impression", "2026-02-01T10:00:00+00:00", device=device)
    load_ndjson_file(write_lines(tmp_path / "anonymous.ndjson", log.records), event_store)
    everything = pd.concat(list(event_store.read_events()), ignore_index=True)
    chunks = list(
        event_store.read_events_grouped_by_user(
            occurred_until=datetime.now(UTC), chunk_rows=chunk_rows
        )
    )
    users = [set(chunk["nami_user_id"].dropna()) for chunk in chunks]
    assert all(first.isdisjoint(second) for first, second in itertools.combinations(users, 2))
    read = sorted(event_id for chunk in chunks for event_id in chunk["event_id"])
    assert read == sorted(everything["event_id"])
    assert everything["nami_user_id"].value_counts().max() > 1
    assert everything["nami_user_id"].isna().any()
