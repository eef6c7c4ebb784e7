"""The `/_emulator` endpoints: stats per credential, no secrets anywhere, config and reset."""

import json
import time

import requests

from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines_tests.emulators.credentials import (
    AMPLITUDE_KEY,
    MPARTICLE_KEY,
    MPARTICLE_SECRET,
    OTHER_MPARTICLE_KEY,
    OTHER_MPARTICLE_SECRET,
)
from nami_pipelines_tests.emulators.payloads import amplitude_event, mparticle_batch


def send_mparticle(emulator: EmulatorProcess, auth: tuple[str, str], batches: int) -> int:
    body = [mparticle_batch(f"user-{n}") for n in range(batches)]
    url = f"{emulator.mparticle_url}/bulkevents"
    return requests.post(url, json=body, auth=auth, timeout=10).status_code


def test_health(emulator: EmulatorProcess) -> None:
    assert emulator.health() == {"status": "ok"}


def test_stats_per_credential(emulator: EmulatorProcess) -> None:
    send_mparticle(emulator, (MPARTICLE_KEY, MPARTICLE_SECRET), 2)
    send_mparticle(emulator, (OTHER_MPARTICLE_KEY, OTHER_MPARTICLE_SECRET), 3)
    send_mparticle(emulator, (OTHER_MPARTICLE_KEY, OTHER_MPARTICLE_SECRET), 1)

    stats = emulator.stats()["mparticle"]

    assert (stats["requests"], stats["unique_events"]) == (3, 6)
    per_key = stats["per_credential"]
    assert set(per_key) == {MPARTICLE_KEY, OTHER_MPARTICLE_KEY}
    assert (per_key[MPARTICLE_KEY]["requests"], per_key[MPARTICLE_KEY]["unique_events"]) == (1, 2)
    other = per_key[OTHER_MPARTICLE_KEY]
    assert (other["requests"], other["unique_events"], other["batches"]) == (2, 4, 4)
    assert other["responses"] == {"202": 2}


def test_secrets_never_appear_in_control_answers(emulator: EmulatorProcess) -> None:
    send_mparticle(emulator, (MPARTICLE_KEY, MPARTICLE_SECRET), 1)
    send_mparticle(emulator, (MPARTICLE_KEY, "guessed-secret-123"), 1)
    send_mparticle(emulator, (OTHER_MPARTICLE_KEY, MPARTICLE_SECRET), 1)
    requests.post(
        emulator.amplitude_url,
        json={"api_key": AMPLITUDE_KEY, "events": [amplitude_event()]},
        timeout=10,
    )

    answers = json.dumps(
        [
            emulator.stats(),
            emulator.config(),
            emulator.received("mparticle"),
            emulator.received("mparticle", kind="rejected"),
            emulator.profiles("mparticle"),
        ]
    )

    for secret in (MPARTICLE_SECRET, OTHER_MPARTICLE_SECRET, "guessed-secret-123"):
        assert secret not in answers
    assert emulator.config()["mparticle_credentials"] == sorted(
        [MPARTICLE_KEY, OTHER_MPARTICLE_KEY]
    )


def test_configure_changes_credentials(emulator: EmulatorProcess) -> None:
    emulator.configure(mparticle_credentials={"new-key": "new-secret"}, amplitude_api_keys=["k2"])

    assert send_mparticle(emulator, (MPARTICLE_KEY, MPARTICLE_SECRET), 1) == 403
    assert send_mparticle(emulator, ("new-key", "new-secret"), 1) == 202
    refused = requests.post(
        emulator.amplitude_url,
        json={"api_key": AMPLITUDE_KEY, "events": [amplitude_event()]},
        timeout=10,
    )
    assert refused.status_code == 400


def test_invalid_config_is_refused(emulator: EmulatorProcess) -> None:
    url = f"{emulator.url}/_emulator/config"

    for change in ({"validate_schema": "yes"}, {"amplitude_project_eps": -1}, {"colour": 1}):
        response = requests.post(url, json=change, timeout=10)
        assert response.status_code == 400, change
    assert emulator.config()["validate_schema"] is True


def test_reset_clears_records_and_stats(emulator: EmulatorProcess) -> None:
    send_mparticle(emulator, (MPARTICLE_KEY, MPARTICLE_SECRET), 2)

    emulator.reset()

    assert emulator.stats()["mparticle"]["requests"] == 0
    assert emulator.received("mparticle") == []
    assert emulator.profiles("mparticle") == []


def test_received_pages(emulator: EmulatorProcess) -> None:
    send_mparticle(emulator, (MPARTICLE_KEY, MPARTICLE_SECRET), 5)

    everything = emulator.received("mparticle")
    page = emulator.received("mparticle", offset=1, limit=2)

    assert page == everything[1:3]
    assert [entry["seq"] for entry in everything] == sorted(entry["seq"] for entry in everything)


def test_each_accepted_event_carries_the_time_it_was_accepted(emulator: EmulatorProcess) -> None:
    before_mparticle = time.time()
    send_mparticle(emulator, (MPARTICLE_KEY, MPARTICLE_SECRET), 2)
    between = time.time()
    body = {"api_key": AMPLITUDE_KEY, "events": [amplitude_event(), amplitude_event()]}
    answer = requests.post(emulator.amplitude_url, json=body, timeout=10)
    after_amplitude = time.time()

    assert answer.status_code == 200
    mparticle = [entry["recorded_at"] for entry in emulator.received("mparticle")]
    amplitude = [entry["recorded_at"] for entry in emulator.received("amplitude")]
    assert len(mparticle) == 2 and len(amplitude) == 2
    assert all(before_mparticle <= at <= between for at in mparticle)
    assert all(between <= at <= after_amplitude for at in amplitude)
