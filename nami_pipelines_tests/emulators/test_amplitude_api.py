"""The Amplitude emulator over HTTP: keys, event checks (all or nothing), limits, throttling,
Identify, dedup and profiles."""

import json
from typing import Any

import pytest
import requests

from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines_tests.emulators.credentials import AMPLITUDE_KEY, OTHER_AMPLITUDE_KEY
from nami_pipelines_tests.emulators.payloads import amplitude_event


def upload(
    emulator: EmulatorProcess,
    events: list[Any],
    path: str = "/2/httpapi",
    api_key: str = AMPLITUDE_KEY,
    **extra: Any,
) -> requests.Response:
    body = {"api_key": api_key, "events": events, **extra}
    return requests.post(f"{emulator.url}{path}", json=body, timeout=10)


def identify(
    emulator: EmulatorProcess, identification: Any, api_key: str = AMPLITUDE_KEY
) -> requests.Response:
    form = {"api_key": api_key, "identification": json.dumps(identification)}
    return requests.post(f"{emulator.url}/identify", data=form, timeout=10)


def amplitude_stats(emulator: EmulatorProcess) -> dict[str, Any]:
    return emulator.stats()["amplitude"]


def assert_nothing_ingested(emulator: EmulatorProcess) -> None:
    stats = amplitude_stats(emulator)
    assert stats["events"] == 0
    assert emulator.received("amplitude") == []
    assert emulator.profiles("amplitude") == []


def test_success_body_and_records(emulator: EmulatorProcess) -> None:
    events = [amplitude_event("user-0001"), amplitude_event("user-0002")]

    response = upload(emulator, events)

    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200
    assert body["events_ingested"] == 2
    assert body["payload_size_bytes"] == int(response.request.headers["Content-Length"])
    assert isinstance(body["server_upload_time"], int)
    received = emulator.received("amplitude")
    assert [entry["event"] for entry in received] == events
    assert [entry["user"] for entry in received] == ["user-0001", "user-0002"]
    assert {entry["credential"] for entry in received} == {AMPLITUDE_KEY}


def test_unknown_api_key_is_refused(emulator: EmulatorProcess) -> None:
    response = upload(emulator, [amplitude_event()], api_key="not-a-project")

    assert response.status_code == 400
    assert response.json() == {"code": 400, "error": "Invalid API key: not-a-project"}
    assert_nothing_ingested(emulator)


def test_missing_fields_list_the_events_and_nothing_is_ingested(
    emulator: EmulatorProcess,
) -> None:
    no_type = amplitude_event()
    del no_type["event_type"]
    no_ids = amplitude_event()
    del no_ids["user_id"], no_ids["device_id"]

    response = upload(emulator, [amplitude_event(), no_type, amplitude_event(), no_ids])

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert body["events_with_missing_fields"] == {
        "event_type": [1],
        "user_id_or_device_id": [3],
    }
    assert_nothing_ingested(emulator)
    stats = amplitude_stats(emulator)
    assert stats["rejected"]["events"] == 2
    assert stats["rejected"]["reasons"] == {
        "missing_field:event_type": 1,
        "missing_field:user_id_or_device_id": 1,
    }


def test_invalid_field_types_are_listed(emulator: EmulatorProcess) -> None:
    events = [
        amplitude_event(time="2024-01-01"),
        amplitude_event(event_properties=["not", "an", "object"]),
        amplitude_event(price=True),
        amplitude_event(),
    ]

    response = upload(emulator, events)

    assert response.status_code == 400
    assert response.json()["events_with_invalid_fields"] == {
        "time": [0],
        "event_properties": [1],
        "price": [2],
    }
    assert_nothing_ingested(emulator)


def test_short_ids_are_refused_unless_min_id_length_allows(emulator: EmulatorProcess) -> None:
    events = [amplitude_event("abc"), amplitude_event("user-0001", device_id="d1")]

    refused = upload(emulator, events)
    allowed = upload(emulator, events, options={"min_id_length": 2})

    assert refused.status_code == 400
    assert refused.json()["events_with_invalid_id_lengths"] == {"user_id": [0], "device_id": [1]}
    assert allowed.status_code == 200
    assert amplitude_stats(emulator)["unique_events"] == 2


def test_more_than_2000_events_gets_413_on_httpapi_not_on_batch(
    emulator: EmulatorProcess,
) -> None:
    events = [amplitude_event(f"user-{index:05d}") for index in range(2001)]

    assert upload(emulator, events).status_code == 413
    assert upload(emulator, events, path="/batch").status_code == 200


def test_body_over_1_mb_gets_413_on_httpapi_not_on_batch(emulator: EmulatorProcess) -> None:
    events = [
        amplitude_event(f"user-{n:04d}", event_properties={"p": "x" * 2000}) for n in range(600)
    ]

    assert upload(emulator, events).status_code == 413
    assert upload(emulator, events, path="/batch").status_code == 200
    assert amplitude_stats(emulator)["rejected"]["reasons"] == {"payload_too_large": 1}


def test_more_than_30_events_per_second_for_a_user_gets_429(emulator: EmulatorProcess) -> None:
    events = [amplitude_event("user-busy", device_id=f"device-{n:03d}") for n in range(31)]
    events.append(amplitude_event("user-calm"))

    response = upload(emulator, events)

    assert response.status_code == 429
    assert response.json() == {
        "code": 429,
        "error": "Too many requests for some devices and users",
        "eps_threshold": 30,
        "throttled_users": {"user-busy": 31},
        "throttled_devices": {},
        "throttled_events": list(range(31)),
    }
    assert_nothing_ingested(emulator)
    assert upload(emulator, events, path="/batch").status_code == 200


def test_the_window_spans_requests_and_devices_count_too(emulator: EmulatorProcess) -> None:
    first = [amplitude_event(f"user-{n:04d}", device_id="shared-device") for n in range(20)]
    second = [amplitude_event(f"user-{n:04d}", device_id="shared-device") for n in range(20, 35)]

    assert upload(emulator, first).status_code == 200
    response = upload(emulator, second)

    assert response.status_code == 429
    assert response.json()["throttled_devices"] == {"shared-device": 35}
    assert amplitude_stats(emulator)["unique_events"] == 20


def test_project_rate_limit(emulator: EmulatorProcess) -> None:
    emulator.configure(amplitude_project_eps=50)
    events = [amplitude_event(f"user-{n:04d}") for n in range(40)]

    assert upload(emulator, events).status_code == 200
    throttled = upload(emulator, events)
    other_project = upload(emulator, events, api_key=OTHER_AMPLITUDE_KEY)

    assert throttled.status_code == 429
    assert throttled.json()["error"] == "Too many requests for this project"
    assert other_project.status_code == 200


def test_identify_updates_profiles_in_arrival_order(emulator: EmulatorProcess) -> None:
    upload(emulator, [amplitude_event("user-0001", user_properties={"tier": "trial", "a": 1})])
    single = identify(emulator, {"user_id": "user-0001", "user_properties": {"tier": "paid"}})
    several = identify(
        emulator,
        [
            {"user_id": "user-0001", "user_properties": {"$unset": {"a": "-"}}},
            {"device_id": "device-0002", "user_properties": {"$setOnce": {"first": "x"}}},
            {"device_id": "device-0002", "user_properties": {"$setOnce": {"first": "y"}}},
        ],
    )

    assert (single.status_code, single.text) == (200, "success")
    assert several.status_code == 200
    profiles = {p["user"]: p for p in emulator.profiles("amplitude")}
    assert profiles["user-0001"]["attributes"] == {"tier": "paid"}
    assert profiles["user-0001"]["updates"] == 3
    assert profiles["device-0002"]["attributes"] == {"first": "x"}
    stats = amplitude_stats(emulator)
    assert (stats["identifies"], stats["attribute_updates"]) == (2, 4)
    assert len(emulator.received("amplitude", kind="identifications")) == 4


@pytest.mark.parametrize(
    "identification",
    [
        {"user_properties": {"tier": "paid"}},
        {"user_id": "abc", "user_properties": {}},
        {"user_id": "user-0001", "user_properties": ["tier"]},
        {"user_id": "user-0001", "user_properties": {"$add": {"count": 1}}},
    ],
    ids=["no-id", "short-id", "properties-not-object", "unsupported-operation"],
)
def test_invalid_identification_is_refused(
    emulator: EmulatorProcess, identification: dict[str, Any]
) -> None:
    response = identify(emulator, [{"user_id": "user-0002", "user_properties": {}}, identification])

    assert response.status_code == 400
    assert "identification[1]" in response.json()["error"]
    assert emulator.profiles("amplitude") == []


def test_identify_with_unknown_key_is_refused(emulator: EmulatorProcess) -> None:
    response = identify(emulator, {"user_id": "user-0001"}, api_key="nope-nope")

    assert response.status_code == 400
    assert response.json()["error"] == "Invalid API key: nope-nope"


def test_events_are_deduplicated_by_insert_id(emulator: EmulatorProcess) -> None:
    events = [amplitude_event(f"user-{n:04d}", user_properties={"v": 1}) for n in range(3)]
    replayed = [{**event, "user_properties": {"v": 0}} for event in events]

    upload(emulator, events)
    upload(emulator, [*replayed, amplitude_event("user-0009")])

    stats = amplitude_stats(emulator)
    assert (stats["events"], stats["unique_events"], stats["duplicate_events"]) == (7, 4, 3)
    assert len(emulator.received("amplitude")) == 4
    profiles = [p for p in emulator.profiles("amplitude") if p["user"] != "user-0009"]
    assert all(profile["attributes"] == {"v": 1} for profile in profiles)


def test_stats_are_kept_per_project(emulator: EmulatorProcess) -> None:
    upload(emulator, [amplitude_event("user-0001")])
    upload(
        emulator,
        [amplitude_event("user-0001"), amplitude_event("user-0002")],
        api_key=OTHER_AMPLITUDE_KEY,
    )

    per_key = amplitude_stats(emulator)["per_credential"]
    assert per_key[AMPLITUDE_KEY]["unique_events"] == 1
    assert per_key[OTHER_AMPLITUDE_KEY]["unique_events"] == 2
    assert per_key[OTHER_AMPLITUDE_KEY]["responses"] == {"200": 1}


@pytest.mark.parametrize(
    ("field", "placeholder"),
    [
        ("user_id", "null"),
        ("user_id", "Undefined"),
        ("user_id", "00000000-0000-0000-0000-000000000000"),
        ("device_id", "lmy47d"),
        ("device_id", "-1"),
    ],
)
def test_placeholder_ids_are_refused_as_invalid_fields(
    emulator: EmulatorProcess, field: str, placeholder: str
) -> None:
    """Amplitude refuses placeholder ids (whatever their case), listing the events that carry
    one under the field, even with `min_id_length` lowered to take the short ones."""
    events = [amplitude_event("user-0001"), {**amplitude_event("user-0002"), field: placeholder}]

    response = upload(emulator, events, options={"min_id_length": 1})

    assert response.status_code == 400
    assert response.json()["events_with_invalid_fields"] == {field: [1]}
    assert_nothing_ingested(emulator)


def test_placeholder_id_in_an_identification_is_refused(emulator: EmulatorProcess) -> None:
    response = identify(emulator, [{"user_id": "Anonymous", "user_properties": {"a": 1}}])

    assert response.status_code == 400
    assert "placeholder" in response.json()["error"]
    assert emulator.profiles("amplitude") == []


def test_a_request_with_no_event_checks_the_key_and_ingests_nothing(
    emulator: EmulatorProcess,
) -> None:
    """What `check` relies on: a known key gets the 400 about missing events, an unknown one
    "Invalid API key"."""
    known = upload(emulator, [])
    unknown = upload(emulator, [], api_key="not-a-project")

    assert (known.status_code, known.json()["missing_field"]) == (400, "events")
    assert unknown.status_code == 400
    assert unknown.json()["error"].startswith("Invalid API key")
    assert_nothing_ingested(emulator)


def test_accepted_events_record_the_request_that_carried_them(emulator: EmulatorProcess) -> None:
    upload(emulator, [amplitude_event("user-0001"), amplitude_event("user-0002")])
    upload(emulator, [amplitude_event("user-0003")])

    received = emulator.received("amplitude")
    assert [entry["request"] for entry in received] == [1, 1, 2]
