"""The mParticle emulator over HTTP: auth, schema, limits, bulk, historical, dedup, profiles."""

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines.emulators.mparticle_schema import sample_batch
from nami_pipelines_tests.emulators.credentials import (
    MPARTICLE_KEY,
    MPARTICLE_SECRET,
    OTHER_MPARTICLE_KEY,
    OTHER_MPARTICLE_SECRET,
)
from nami_pipelines_tests.emulators.payloads import (
    DAY_MS,
    mparticle_batch,
    mparticle_event,
    now_ms,
)

AUTH = (MPARTICLE_KEY, MPARTICLE_SECRET)


def post(
    emulator: EmulatorProcess, path: str, body: Any, auth: tuple[str, str] | None = AUTH
) -> requests.Response:
    return requests.post(f"{emulator.mparticle_url}{path}", json=body, auth=auth, timeout=10)


def mparticle_stats(emulator: EmulatorProcess) -> dict[str, Any]:
    return emulator.stats()["mparticle"]


def test_official_sample_batch_is_accepted(emulator: EmulatorProcess) -> None:
    response = post(emulator, "/events", sample_batch())

    assert response.status_code == 202
    stats = mparticle_stats(emulator)
    assert (stats["batches"], stats["events"], stats["unique_events"]) == (1, 14, 14)
    received = emulator.received("mparticle")
    assert len(received) == 14
    assert {entry["credential"] for entry in received} == {MPARTICLE_KEY}
    assert {entry["user"] for entry in received} == {"123456"}


@pytest.mark.parametrize(
    ("auth", "status", "reason"),
    [
        (None, 401, "unauthorized"),
        ((MPARTICLE_KEY, "wrong-secret"), 403, "forbidden"),
        (("unknown-key", MPARTICLE_SECRET), 403, "forbidden"),
    ],
    ids=["missing", "wrong-secret", "unknown-key"],
)
def test_bad_credentials_get_401_or_403_and_nothing_is_recorded(
    emulator: EmulatorProcess, auth: tuple[str, str] | None, status: int, reason: str
) -> None:
    """As mParticle: 401 without credentials, 403 with credentials it refuses."""
    response = post(emulator, "/bulkevents", [mparticle_batch()], auth=auth)

    assert response.status_code == status
    stats = mparticle_stats(emulator)
    assert stats["events"] == 0
    assert stats["rejected"]["reasons"] == {reason: 1}
    assert stats["per_credential"] == {}


def test_invalid_batch_is_refused_with_the_reason(emulator: EmulatorProcess) -> None:
    batch = mparticle_batch()
    batch["events"][0]["data"].pop("event_name")

    response = post(emulator, "/events", batch)

    assert response.status_code == 400
    body = response.json()
    assert body["reason"] == "schema"
    assert "batch.events[0].data" in body["errors"][0]["message"]
    assert "event_name" in body["errors"][0]["message"]
    assert mparticle_stats(emulator)["events"] == 0


def test_ip_is_checked_with_format_checking(emulator: EmulatorProcess) -> None:
    batch = sample_batch()
    batch["ip"] = "999.1.1.1"

    response = post(emulator, "/events", batch)

    assert response.status_code == 400
    assert "batch.ip" in response.json()["errors"][0]["message"]


def _too_many_attributes(batch: dict[str, Any]) -> None:
    batch["user_attributes"] = {f"attribute_{index}": "x" for index in range(101)}


def _long_list(batch: dict[str, Any]) -> None:
    batch["user_attributes"] = {"namiml_device_ids": [f"device-{n}" for n in range(1001)]}


def _long_list_entry(batch: dict[str, Any]) -> None:
    batch["user_attributes"] = {"namiml_active_skus": ["x" * 513]}


def _long_event_attribute(batch: dict[str, Any]) -> None:
    batch["events"][0]["data"]["custom_attributes"]["name"] = "x" * 4097


def _object_event_attribute(batch: dict[str, Any]) -> None:
    batch["events"][0]["data"]["custom_attributes"]["price"] = {"amount": 1}


def _large_batch(batch: dict[str, Any]) -> None:
    batch["events"] = [mparticle_event(now_ms(), padding="x" * 4000) for _ in range(33)]


LIMITS: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_too_many_attributes, "too_many_user_attributes"),
    (_long_list, "user_attribute_list_too_long"),
    (_long_list_entry, "user_attribute_entry_too_long"),
    (_long_event_attribute, "event_attribute_value_too_long"),
    (_object_event_attribute, "event_attribute_not_scalar"),
    (_large_batch, "batch_too_large"),
]


@pytest.mark.parametrize(("mutate", "reason"), LIMITS, ids=[reason for _, reason in LIMITS])
def test_batch_limits_refuse_the_batch(
    emulator: EmulatorProcess, mutate: Callable[[dict[str, Any]], None], reason: str
) -> None:
    batch = mparticle_batch()
    mutate(batch)

    single = post(emulator, "/events", batch)
    bulk = post(emulator, "/bulkevents", [batch, mparticle_batch()])

    assert single.status_code == 400
    assert single.json()["reason"] == reason
    assert bulk.status_code == 202
    stats = mparticle_stats(emulator)
    assert stats["rejected"]["batches"] == 2
    assert stats["rejected"]["reasons"] == {reason: 2}
    assert stats["batches"] == 1


def test_limits_just_under_are_accepted(emulator: EmulatorProcess) -> None:
    batch = mparticle_batch(
        user_attributes={
            **{f"attribute_{index}": "x" for index in range(99)},
            "namiml_device_ids": ["x" * 512] * 100,
        }
    )
    batch["events"][0]["data"]["custom_attributes"]["name"] = "x" * 4096

    assert post(emulator, "/events", batch).status_code == 202


def test_request_over_256_kb_gets_413(emulator: EmulatorProcess) -> None:
    batches = [mparticle_batch(events=[mparticle_event(now_ms(), pad="x" * 3000)] * 10)] * 9

    response = post(emulator, "/bulkevents", batches)

    assert len(json.dumps(batches)) > 256_000
    assert response.status_code == 413
    assert mparticle_stats(emulator)["rejected"]["reasons"] == {"request_too_large": 1}


def test_more_than_100_batches_gets_400(emulator: EmulatorProcess) -> None:
    response = post(emulator, "/bulkevents", [mparticle_batch(events=[])] * 101)

    assert response.status_code == 400
    assert mparticle_stats(emulator)["rejected"]["reasons"] == {"too_many_batches": 1}


def test_bulk_rejects_bad_batches_inside_a_202(emulator: EmulatorProcess) -> None:
    bad = mparticle_batch()
    bad["environment"] = "staging"
    batches = [mparticle_batch(), bad, mparticle_batch()]

    response = post(emulator, "/bulkevents", batches)

    assert response.status_code == 202
    stats = mparticle_stats(emulator)
    assert (stats["batches"], stats["unique_events"]) == (2, 2)
    assert stats["rejected"]["batches"] == 1
    assert stats["rejected"]["reasons"] == {"schema": 1}
    [rejected] = emulator.received("mparticle", kind="rejected")
    assert rejected["batch_index"] == 1
    assert rejected["source_request_id"] == bad["source_request_id"]
    assert "environment" in rejected["detail"]


def test_historical_keeps_only_old_timestamped_events(emulator: EmulatorProcess) -> None:
    old = mparticle_event(now_ms() - 40 * DAY_MS)
    recent = mparticle_event(now_ms() - 71 * 3600 * 1000)
    untimed = mparticle_event()
    batches = [
        mparticle_batch("user-a", [old, recent, untimed], user_attributes={"plan": "old"}),
        mparticle_batch("user-b", events=[], user_attributes={"plan": "new"}),
    ]

    response = post(emulator, "/bulkevents/historical", batches)

    assert response.status_code == 202
    stats = mparticle_stats(emulator)
    assert stats["historical"] == {
        "batches": 1,
        "events": 1,
        "unique_events": 1,
        "dropped_events": 2,
        "dropped_reasons": {"less_than_72_hours_old": 1, "missing_timestamp": 1},
    }
    assert stats["rejected"]["reasons"] == {"historical_batch_without_events": 1}
    [kept] = emulator.received("mparticle")
    assert kept["historical"] is True
    assert kept["event"] == old
    assert emulator.profiles("mparticle") == []


def test_events_are_deduplicated_by_source_message_id(emulator: EmulatorProcess) -> None:
    batch = mparticle_batch(events=[mparticle_event(now_ms()) for _ in range(3)])
    retry = copy.deepcopy(batch)
    retry["events"].append(mparticle_event(now_ms()))

    post(emulator, "/events", batch)
    post(emulator, "/bulkevents", [retry])

    stats = mparticle_stats(emulator)
    assert (stats["events"], stats["unique_events"], stats["duplicate_events"]) == (7, 4, 3)
    assert len(emulator.received("mparticle")) == 4


def test_attribute_updates_apply_to_profiles_in_arrival_order(emulator: EmulatorProcess) -> None:
    first = mparticle_batch("user-a", events=[], user_attributes={"tier": "trial", "old": "x"})
    with_event = mparticle_batch("user-a", user_attributes={"tier": "paid"})
    last = mparticle_batch("user-a", events=[], user_attributes={"tier": "expired"})
    last["deleted_user_attributes"] = ["old"]

    for batch in (first, with_event, last):
        assert post(emulator, "/events", batch).status_code == 202

    [profile] = emulator.profiles("mparticle")
    assert profile["credential"] == MPARTICLE_KEY
    assert profile["user"] == "user-a"
    assert profile["attributes"] == {"tier": "expired"}
    assert profile["updates"] == 3
    stats = mparticle_stats(emulator)
    assert stats["attribute_updates"] == 2
    updates = emulator.received("mparticle", kind="attribute_updates")
    assert [entry["batch"]["user_attributes"]["tier"] for entry in updates] == ["trial", "expired"]


def test_profiles_are_kept_per_feed(emulator: EmulatorProcess) -> None:
    other_auth = (OTHER_MPARTICLE_KEY, OTHER_MPARTICLE_SECRET)
    post(emulator, "/events", mparticle_batch("user-a", events=[], user_attributes={"p": "ios"}))
    post(
        emulator,
        "/events",
        mparticle_batch("user-a", events=[], user_attributes={"p": "android"}),
        auth=other_auth,
    )

    profiles = {p["credential"]: p["attributes"] for p in emulator.profiles("mparticle")}
    assert profiles == {MPARTICLE_KEY: {"p": "ios"}, OTHER_MPARTICLE_KEY: {"p": "android"}}


def test_schema_validation_can_be_switched_off(emulator: EmulatorProcess) -> None:
    batch = mparticle_batch()
    batch["environment"] = "staging"
    emulator.configure(validate_schema=False)

    assert post(emulator, "/events", batch).status_code == 202
    _long_list_entry(batch)
    assert post(emulator, "/events", batch).json()["reason"] == "user_attribute_entry_too_long"


def test_recording_payloads_can_be_switched_off(emulator: EmulatorProcess) -> None:
    emulator.configure(record_payloads=False)

    post(emulator, "/bulkevents", [mparticle_batch(), mparticle_batch()])

    assert emulator.received("mparticle") == []
    assert mparticle_stats(emulator)["unique_events"] == 2


def test_malformed_requests_get_400(emulator: EmulatorProcess) -> None:
    url = f"{emulator.mparticle_url}/bulkevents"

    not_json = requests.post(url, data=b"[{", auth=AUTH, timeout=10)
    not_array = post(emulator, "/bulkevents", mparticle_batch())

    assert (not_json.status_code, not_array.status_code) == (400, 400)
    reasons = mparticle_stats(emulator)["rejected"]["reasons"]
    assert reasons == {"bulk_not_an_array": 1, "invalid_json": 1}
