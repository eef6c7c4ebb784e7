"""Injected faults, seen from a real HTTP client: statuses, headers, delays, broken
connections, partial rejections, and work done before a failure (which dedup must absorb)."""

import time
from typing import Any

import pytest
import requests

from nami_pipelines.emulators import EmulatorError, EmulatorProcess, FaultRule
from nami_pipelines_tests.emulators.credentials import (
    AMPLITUDE_KEY,
    MPARTICLE_KEY,
    MPARTICLE_SECRET,
)
from nami_pipelines_tests.emulators.payloads import amplitude_event, mparticle_batch

AUTH = (MPARTICLE_KEY, MPARTICLE_SECRET)


def send_mparticle(
    emulator: EmulatorProcess, batches: list[Any], **kwargs: Any
) -> requests.Response:
    return requests.post(
        f"{emulator.mparticle_url}/bulkevents", json=batches, auth=AUTH, timeout=10, **kwargs
    )


def send_amplitude(emulator: EmulatorProcess, events: list[Any]) -> requests.Response:
    body = {"api_key": AMPLITUDE_KEY, "events": events}
    return requests.post(emulator.amplitude_url, json=body, timeout=10)


def test_throttle_with_and_without_retry_after(emulator: EmulatorProcess) -> None:
    emulator.inject_faults(
        FaultRule("throttle", retry_after=7, count=1, api="mparticle"),
        FaultRule("throttle", count=1, api="amplitude"),
    )

    with_header = send_mparticle(emulator, [mparticle_batch()])
    without_header = send_amplitude(emulator, [amplitude_event()])

    assert with_header.status_code == 429
    assert with_header.headers["Retry-After"] == "7"
    assert without_header.status_code == 429
    assert "Retry-After" not in without_header.headers
    assert without_header.json()["throttled_events"] == []
    assert send_mparticle(emulator, [mparticle_batch()]).status_code == 202
    assert emulator.stats()["mparticle"]["faults"] == {"429_retry_after": 1}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors(emulator: EmulatorProcess, status: int) -> None:
    emulator.inject_faults(FaultRule("server_error", status=status, count=1))

    response = send_amplitude(emulator, [amplitude_event()])

    assert response.status_code == status
    if status in (502, 504):
        assert response.headers["content-type"].startswith("text/plain")
    assert emulator.stats()["amplitude"]["unique_events"] == 0


def test_errors_after_processing_leave_the_work_done_and_dedup_absorbs_resends(
    emulator: EmulatorProcess,
) -> None:
    emulator.inject_faults(
        FaultRule("server_error", status=500, processed_share=1.0, count=1, api="mparticle"),
        FaultRule("server_error", status=504, processed_share=1.0, count=1, api="amplitude"),
    )
    batches = [mparticle_batch(), mparticle_batch()]
    events = [amplitude_event(), amplitude_event()]

    assert send_mparticle(emulator, batches).status_code == 500
    assert send_mparticle(emulator, batches).status_code == 202
    assert send_amplitude(emulator, events).status_code == 504
    assert send_amplitude(emulator, events).status_code == 200

    stats = emulator.stats()
    for api in ("mparticle", "amplitude"):
        assert stats[api]["unique_events"] == 2
        assert stats[api]["duplicate_events"] == 2
        assert stats[api]["processed_before_failure"] == 1


def test_slow_responses(emulator: EmulatorProcess) -> None:
    emulator.inject_faults(FaultRule("slow", delay_seconds=0.4, count=2, api="amplitude"))

    started = time.monotonic()
    assert send_amplitude(emulator, [amplitude_event()]).status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            emulator.amplitude_url,
            json={"api_key": AMPLITUDE_KEY, "events": [amplitude_event()]},
            timeout=0.1,
        )
    # The request the client gave up on is still processed, as a real server would.
    deadline = time.monotonic() + 5
    while emulator.stats()["amplitude"]["unique_events"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.stats()["amplitude"]["unique_events"] == 2


def test_dropped_connections_break_the_client_read(emulator: EmulatorProcess) -> None:
    emulator.inject_faults(
        FaultRule("drop", count=1, api="mparticle"),
        FaultRule("drop", processed_share=1.0, count=1, api="amplitude"),
    )
    broken = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)

    with requests.Session() as session:
        with pytest.raises(broken):
            session.post(
                f"{emulator.mparticle_url}/bulkevents", json=[mparticle_batch()], auth=AUTH
            )
        with pytest.raises(broken):
            session.post(
                emulator.amplitude_url,
                json={"api_key": AMPLITUDE_KEY, "events": [amplitude_event()]},
            )
        after = session.post(
            f"{emulator.mparticle_url}/bulkevents", json=[mparticle_batch()], auth=AUTH
        )

    assert after.status_code == 202
    stats = emulator.stats()
    assert stats["mparticle"]["unique_events"] == 1
    assert stats["amplitude"]["unique_events"] == 1
    assert stats["mparticle"]["responses"] == {"202": 1, "dropped": 1}
    assert stats["amplitude"]["per_credential"][AMPLITUDE_KEY]["processed_before_failure"] == 1


def test_partial_reject_amplitude_lists_events_and_ingests_nothing(
    emulator: EmulatorProcess,
) -> None:
    emulator.inject_faults(FaultRule("partial_reject", items=2, count=1), seed=3)
    events = [amplitude_event(f"user-{n:04d}") for n in range(10)]

    response = send_amplitude(emulator, events)

    assert response.status_code == 400
    injected = response.json()["events_with_invalid_fields"]["injected_fault"]
    assert len(injected) == 2
    assert all(0 <= index < 10 for index in injected)
    assert emulator.stats()["amplitude"]["events"] == 0


def test_partial_reject_mparticle_rejects_batches_inside_a_202(emulator: EmulatorProcess) -> None:
    emulator.inject_faults(FaultRule("partial_reject", items=2, count=1, api="mparticle"))
    batches = [mparticle_batch(f"user-{n}") for n in range(5)]

    response = send_mparticle(emulator, batches)

    assert response.status_code == 202
    stats = emulator.stats()["mparticle"]
    assert stats["batches"] == 3
    assert stats["rejected"]["reasons"] == {"injected_fault": 2}
    rejected = emulator.received("mparticle", kind="rejected")
    assert {entry["source_request_id"] for entry in rejected} <= {
        batch["source_request_id"] for batch in batches
    }


def test_forced_413(emulator: EmulatorProcess) -> None:
    emulator.inject_faults(FaultRule("too_large", count=1))

    assert send_mparticle(emulator, [mparticle_batch()]).status_code == 413
    assert send_mparticle(emulator, [mparticle_batch()]).status_code == 202


def test_faults_limited_to_one_api_and_n_occurrences(emulator: EmulatorProcess) -> None:
    emulator.inject_faults(FaultRule("server_error", status=503, count=2, api="amplitude"))

    mparticle = [send_mparticle(emulator, [mparticle_batch()]).status_code for _ in range(3)]
    amplitude = [send_amplitude(emulator, [amplitude_event()]).status_code for _ in range(3)]

    assert mparticle == [202, 202, 202]
    assert amplitude == [503, 503, 200]
    assert emulator.faults()["rules"][0]["remaining"] == 0


def test_faults_are_repeatable_under_a_seed(emulator: EmulatorProcess) -> None:
    def statuses() -> list[int]:
        emulator.inject_faults(FaultRule("server_error", status=503, rate=0.5), seed=42)
        return [send_amplitude(emulator, [amplitude_event()]).status_code for _ in range(16)]

    first = statuses()

    assert first == statuses()
    assert set(first) == {200, 503}


def test_reset_clears_faults(emulator: EmulatorProcess) -> None:
    emulator.inject_faults(FaultRule("server_error", status=500))
    emulator.reset()

    assert send_amplitude(emulator, [amplitude_event()]).status_code == 200


def test_invalid_fault_plans_are_refused(emulator: EmulatorProcess) -> None:
    url = f"{emulator.url}/_emulator/faults"
    bad_plans: list[dict[str, Any]] = [
        {"rules": [{"kind": "explode"}]},
        {"rules": [{"kind": "server_error", "status": 503, "processed_share": 0.5}]},
        {"rules": [{"kind": "throttle", "rate": 2}]},
        {"rules": [{"kind": "slow", "colour": "red"}]},
    ]

    for plan in bad_plans:
        assert requests.post(url, json=plan, timeout=10).status_code == 400
    with pytest.raises(ValueError, match="status"):
        FaultRule("server_error", status=418)
    with pytest.raises(EmulatorError):
        emulator.received("mparticle", kind="nothing")


def test_answer_fault_sends_exactly_the_status_body_and_location(
    emulator: EmulatorProcess,
) -> None:
    """What a wrong URL, a proxy or a captive portal sends, for the senders' tests."""
    portal = "<html><body>Sign in to the hotel Wi-Fi</body></html>"
    emulator.inject_faults(
        FaultRule("answer", status=200, body=portal, content_type="text/html", count=1),
        FaultRule("answer", status=302, location="https://portal.example/login", count=1),
        FaultRule("answer", status=405, count=1),
    )

    page = send_amplitude(emulator, [amplitude_event()])
    redirect = send_mparticle(emulator, [mparticle_batch()], allow_redirects=False)
    not_allowed = send_amplitude(emulator, [amplitude_event()])

    assert (page.status_code, page.text) == (200, portal)
    assert page.headers["content-type"].startswith("text/html")
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "https://portal.example/login"
    assert not_allowed.status_code == 405
    assert emulator.stats()["amplitude"]["events"] == 0
    assert emulator.stats()["amplitude"]["faults"] == {"answer_200": 1, "answer_405": 1}


def test_answer_fault_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="answer needs a status"):
        FaultRule("answer")
    with pytest.raises(ValueError, match="only apply to answer"):
        FaultRule("throttle", body="x")
