"""Packing mapped batches and events into requests within the APIs' limits
(docs/mparticle.md, docs/amplitude.md)."""

import itertools
import json
from typing import Any

import pytest

from nami_pipelines.api_limits import MPARTICLE_MAX_BATCH_BYTES, MPARTICLE_MAX_REQUEST_BYTES
from nami_pipelines.destinations.amplitude_mapping import build_amplitude_events
from nami_pipelines.destinations.limits import encode
from nami_pipelines.destinations.mparticle_mapping import MParticleBatch, build_mparticle_batches
from nami_pipelines.destinations.outgoing import Skipped
from nami_pipelines.destinations.packing import (
    PackedRequest,
    pack_amplitude_requests,
    pack_mparticle_bulk,
    split_amplitude_request,
    split_mparticle_request,
)
from nami_pipelines_tests.destinations.support import (
    API_KEY,
    Item,
    amplitude_integration,
    chunk,
    event,
    example_records,
    generated,
    mparticle_integration,
    outgoing,
    schema_errors,
)

RECORDS = {record["event_id"]: record for record in example_records()}
IMPRESSION = RECORDS["81b2e614-7ddf-5d95-9cb5-a4cc522f88d4"]
RENEWED = RECORDS["3889eaf8-9313-5ee5-813d-9648e6adf35e"]
LONG_NAME = "n" * 4096


def _impression(number: int, user: int, name: str = "Onboarding paywall") -> Item:
    payload = {**IMPRESSION["payload"], "name": name}
    return outgoing(
        event(
            IMPRESSION,
            event_id=f"00000000-0000-4000-8000-{user:06d}{number:06d}",
            occurred_at=f"2026-02-01T09:{number // 60:02d}:{number % 60:02d}+00:00",
            external_id=f"external-{user:06d}",
            nami_user_id=f"nami-{user:06d}",
            payload=payload,
        )
    )


def _renewed(user: int) -> Item:
    return outgoing(
        event(
            RENEWED,
            event_id=f"00000000-0000-4000-9000-{user:012d}",
            occurred_at="2026-02-01T23:00:00+00:00",
            external_id=f"external-{user:06d}",
            nami_user_id=f"nami-{user:06d}",
        )
    )


def _mparticle_batches(items: list[Item]) -> list[MParticleBatch]:
    batches, skipped = build_mparticle_batches(chunk(items), mparticle_integration())
    assert skipped == []
    return batches


def _requests(packed: list[Any]) -> list[PackedRequest[Any]]:
    assert all(isinstance(item, PackedRequest) for item in packed)
    return packed


def _decoded_bulk(request: PackedRequest[MParticleBatch]) -> list[dict[str, Any]]:
    decoded = json.loads(request.body)
    assert decoded == [batch.body for batch in request.items]
    return decoded


def test_bulk_requests_hold_at_most_100_batches_in_order() -> None:
    batches = _mparticle_batches([_impression(0, user) for user in range(250)])
    requests = _requests(list(pack_mparticle_bulk(batches)))

    assert [request.batch_count for request in requests] == [100, 100, 50]
    assert [batch for request in requests for batch in request.items] == batches
    for request in requests:
        _decoded_bulk(request)
        assert request.event_ids == tuple(i for batch in request.items for i in batch.event_ids)


def test_bulk_requests_stay_within_256_kb_and_are_filled_greedily() -> None:
    """Batches of ~57 KB: four fit in 256,000 bytes, a fifth would not."""
    items = [_impression(n, user, LONG_NAME) for user in range(10) for n in range(12)]
    batches = _mparticle_batches(items)
    sizes = [len(encode(batch.body)) for batch in batches]
    requests = _requests(list(pack_mparticle_bulk(batches)))

    assert all(50_000 < size < 64_000 for size in sizes)
    assert [request.batch_count for request in requests] == [4, 4, 2]
    assert all(len(request.body) <= MPARTICLE_MAX_REQUEST_BYTES for request in requests)
    for request, following in itertools.pairwise(requests):
        assert len(request.body) + 1 + len(following.parts[0]) > MPARTICLE_MAX_REQUEST_BYTES
        _decoded_bulk(request)


@pytest.mark.parametrize(("slack", "per_request"), [(0, 3), (-1, 2)])
def test_mparticle_request_byte_limit_is_exact(slack: int, per_request: int) -> None:
    """A limit of exactly three batches' bytes takes three; one byte less takes two."""
    batches = _mparticle_batches([_impression(0, user) for user in range(6)])
    sizes = {len(encode(batch.body)) for batch in batches}
    assert len(sizes) == 1
    size = sizes.pop()
    three = 2 + 3 * size + 2  # brackets, three batches, two commas

    packed = _requests(
        list(pack_mparticle_bulk(batches, max_request_bytes=three + slack, max_batch_bytes=size))
    )

    assert [request.batch_count for request in packed] == [per_request] * (6 // per_request)
    assert {len(request.body) for request in packed} == {2 + per_request * (size + 1) - 1}


@pytest.mark.parametrize(("slack", "per_request"), [(0, 3), (-1, 2)])
def test_amplitude_request_byte_limit_is_exact(slack: int, per_request: int) -> None:
    events = [{"event_type": "t", "insert_id": f"e{n}", "device_id": f"d{n:07d}"} for n in range(6)]
    envelope = len(b'{"api_key":"%s","events":[]}' % API_KEY.encode())
    size = len(encode(events[0]))
    three = envelope + 3 * size + 2

    packed = _requests(
        list(
            pack_amplitude_requests(events, API_KEY, options=None, max_request_bytes=three + slack)
        )
    )

    assert [request.batch_count for request in packed] == [per_request] * (6 // per_request)
    assert {len(request.body) for request in packed} == {envelope + per_request * (size + 1) - 1}


def test_a_batch_over_128_kb_is_split_by_events_with_attributes_on_the_last_part() -> None:
    items = [_impression(n, 1, LONG_NAME) for n in range(40)] + [_renewed(1)]
    (batch,) = _mparticle_batches(items)
    assert len(encode(batch.body)) > MPARTICLE_MAX_BATCH_BYTES

    packed = list(pack_mparticle_bulk([batch]))
    parts = [part for request in _requests(packed) for part in request.items]

    assert len(parts) == 2
    assert all(len(encode(part.body)) <= MPARTICLE_MAX_BATCH_BYTES for part in parts)
    assert ["user_attributes" in part.body for part in parts] == [False, True]
    assert parts[-1].body["user_attributes"] == batch.body["user_attributes"]
    assert [i for part in parts for i in part.event_ids] == list(batch.event_ids)
    assert [e for part in parts for e in part.body["events"]] == batch.body["events"]
    assert {part.body["user_identities"]["customer_id"] for part in parts} == {"external-000001"}
    assert [schema_errors(part.body) for part in parts] == [[], []]
    request_ids = [part.body["source_request_id"] for part in parts]
    assert len({*request_ids, batch.body["source_request_id"]}) == 3
    repacked = [p for r in _requests(list(pack_mparticle_bulk([batch]))) for p in r.items]
    assert [part.body["source_request_id"] for part in repacked] == request_ids
    for request in _requests(packed):
        _decoded_bulk(request)


def _hand_batch(events: list[dict[str, Any]], **fields: Any) -> MParticleBatch:
    body = {
        "environment": "production",
        "source_request_id": "6f1d3c3e-8a51-4c8e-9f53-0a1b2c3d4e5f",
        "user_identities": {"customer_id": "external-000009"},
        **fields,
    }
    if events:
        body["events"] = events
    ids = tuple(event["data"]["source_message_id"] for event in events)
    return MParticleBatch(body, ids, "nami-000009")


def _custom_event(number: int, attributes: int = 1) -> dict[str, Any]:
    return {
        "event_type": "custom_event",
        "data": {
            "event_name": "impression",
            "custom_event_type": "other",
            "source_message_id": f"00000000-0000-4000-8000-{number:012d}",
            "custom_attributes": {f"a{index}": LONG_NAME for index in range(attributes)},
        },
    }


def test_a_single_event_too_large_for_any_batch_is_skipped_and_the_rest_sent() -> None:
    huge = _custom_event(2, attributes=40)  # ~165 KB on its own
    batch = _hand_batch([_custom_event(1), huge, _custom_event(3)])

    packed = list(pack_mparticle_bulk([batch]))
    skipped = [item for item in packed if isinstance(item, Skipped)]
    requests = [item for item in packed if isinstance(item, PackedRequest)]

    assert [(item.event_id, item.nami_user_id) for item in skipped] == [
        ("00000000-0000-4000-8000-000000000002", "nami-000009")
    ]
    assert "over mParticle's 128000-byte batch limit" in skipped[0].reason
    assert [i for request in requests for i in request.event_ids] == [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000003",
    ]


def test_an_attribute_update_too_large_for_a_batch_is_skipped() -> None:
    attributes = {"namiml_device_ids": ["x" * 512] * 1000}
    (skipped,) = pack_mparticle_bulk([_hand_batch([], user_attributes=attributes)])

    assert isinstance(skipped, Skipped)
    assert (skipped.event_id, skipped.nami_user_id) == (None, "nami-000009")
    assert skipped.reason.startswith("attribute update is ")


def test_attributes_that_fit_with_no_event_follow_the_events_on_their_own() -> None:
    attributes = {"namiml_device_ids": [f"{index:0100d}" for index in range(1000)]}  # ~103 KB
    batch = _hand_batch(
        [_custom_event(1), _custom_event(2, attributes=9)], user_attributes=attributes
    )

    packed = _requests(list(pack_mparticle_bulk([batch])))
    parts = [part for request in packed for part in request.items]

    assert [(part.event_ids, "user_attributes" in part.body) for part in parts] == [
        (batch.event_ids, False),
        ((), True),
    ]
    assert "events" not in parts[1].body
    assert parts[1].body["user_attributes"] == attributes
    assert [schema_errors(part.body) for part in parts] == [[], []]
    for request in packed:
        _decoded_bulk(request)


def test_mparticle_split_for_a_413_halves_the_batches() -> None:
    batches = _mparticle_batches([_impression(0, user) for user in range(5)])
    (request,) = _requests(list(pack_mparticle_bulk(batches)))
    first, second = split_mparticle_request(request)

    assert (first.batch_count, second.batch_count) == (2, 3)
    assert _decoded_bulk(first) + _decoded_bulk(second) == _decoded_bulk(request)
    assert first.event_ids + second.event_ids == request.event_ids


def test_impossible_mparticle_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_bytes"):
        pack_mparticle_bulk([], max_request_bytes=100_000, max_batch_bytes=128_000)


def _amplitude_events(count: int, name: str = "Onboarding paywall") -> list[dict[str, Any]]:
    items = [_impression(number % 3600, number // 3600, name) for number in range(count)]
    mapped, skipped = build_amplitude_events(chunk(items), amplitude_integration())
    assert skipped == []
    return mapped


def _decoded_amplitude(request: PackedRequest[dict[str, Any]]) -> dict[str, Any]:
    decoded = json.loads(request.body)
    assert decoded["events"] == list(request.items)
    assert decoded["api_key"] == API_KEY
    return decoded


def test_amplitude_requests_hold_at_most_2000_events() -> None:
    """Small events, so the count limit binds before the byte limit."""
    events = [
        {"event_type": "t", "insert_id": f"e{n}", "device_id": f"d{n:07d}"} for n in range(4500)
    ]
    requests = _requests(list(pack_amplitude_requests(events, API_KEY, options=None)))

    assert [request.batch_count for request in requests] == [2000, 2000, 500]
    assert [item for request in requests for item in request.items] == events
    assert all(set(_decoded_amplitude(request)) == {"api_key", "events"} for request in requests)
    assert requests[0].event_ids == tuple(f"e{n}" for n in range(2000))


def test_amplitude_requests_carry_the_options_given() -> None:
    events = _amplitude_events(3)
    (request,) = _requests(
        list(pack_amplitude_requests(events, API_KEY, options={"min_id_length": 3}))
    )

    assert _decoded_amplitude(request)["options"] == {"min_id_length": 3}


def test_amplitude_requests_stay_within_1_mb_and_are_filled_greedily() -> None:
    events = _amplitude_events(800, "n" * 1024)  # ~1.5 KB each
    requests = _requests(list(pack_amplitude_requests(events, API_KEY, options=None)))

    assert len(requests) == 2
    assert all(len(request.body) <= 1_000_000 for request in requests)
    assert len(requests[0].body) + 1 + len(requests[1].parts[0]) > 1_000_000
    assert [item for request in requests for item in request.items] == events
    for request in requests:
        _decoded_amplitude(request)


def test_an_amplitude_event_too_large_for_a_request_is_skipped() -> None:
    small, big = _amplitude_events(2)
    huge = {**big, "event_properties": {"x": "y" * 1_000_000}}
    packed = list(pack_amplitude_requests([small, huge], API_KEY, options=None))
    skipped = [item for item in packed if isinstance(item, Skipped)]
    requests = _requests([item for item in packed if not isinstance(item, Skipped)])

    assert [(item.event_id, item.nami_user_id) for item in skipped] == [(big["insert_id"], None)]
    assert "more than fits in one Amplitude request" in skipped[0].reason
    assert [request.event_ids for request in requests] == [(small["insert_id"],)]


def test_amplitude_split_for_a_413_halves_the_events() -> None:
    events = _amplitude_events(7)
    (request,) = _requests(
        list(pack_amplitude_requests(events, API_KEY, options={"min_id_length": 3}))
    )
    first, second = split_amplitude_request(request)

    assert (first.batch_count, second.batch_count) == (3, 4)
    halves = [_decoded_amplitude(first), _decoded_amplitude(second)]
    assert halves[0]["events"] + halves[1]["events"] == _decoded_amplitude(request)["events"]
    assert [half["options"] for half in halves] == [{"min_id_length": 3}] * 2
    (single,) = _requests(list(pack_amplitude_requests(events[:1], API_KEY, options=None)))
    with pytest.raises(ValueError, match="cannot be split"):
        split_amplitude_request(single)


def test_a_request_never_shows_the_api_key() -> None:
    (request,) = _requests(
        list(pack_amplitude_requests(_amplitude_events(3), API_KEY, options=None))
    )
    first, _ = split_amplitude_request(request)

    assert API_KEY.encode() in request.body
    for shown in (repr(request), str(request), f"{request!r}", repr(first), repr(request.envelope)):
        assert API_KEY not in shown
    assert repr(request) == f"PackedRequest(batch_count=3, events=3, bytes={len(request.body)})"


def test_generated_data_packs_into_valid_requests_within_limits() -> None:
    """Every event of a realistic day is in exactly one request or one Skipped."""
    items = generated(users=300, days=10, seed=3)
    batches, skipped = build_mparticle_batches(chunk(items), mparticle_integration())
    packed = list(pack_mparticle_bulk(batches))
    requests = _requests([item for item in packed if not isinstance(item, Skipped)])

    assert all(len(request.body) <= MPARTICLE_MAX_REQUEST_BYTES for request in requests)
    assert all(request.batch_count <= 100 for request in requests)
    sent = [i for request in requests for i in request.event_ids]
    assert len(sent) == len(set(sent))
    assert sorted(sent + [entry.event_id for entry in skipped]) == sorted(
        item[0].event_id for item in items
    )
    for request in requests:
        _decoded_bulk(request)
