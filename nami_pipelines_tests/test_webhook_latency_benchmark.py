"""The webhook latency row's arithmetic on a real emulator: an event's latency runs from its
webhook's 2xx to the later of the two APIs accepting it (mParticle knows it by its message id),
and an event that one API never accepted is counted, not timed."""

import time
import uuid

import requests

from benchmarks.webhook_latency import acceptance_times, latencies
from nami_pipelines.demo_webhooks import SignedWebhook, WebhookAnswer
from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines_tests.emulators.credentials import (
    AMPLITUDE_KEY,
    MPARTICLE_KEY,
    MPARTICLE_SECRET,
    SETTINGS,
)
from nami_pipelines_tests.emulators.payloads import (
    amplitude_event,
    mparticle_batch,
    mparticle_event,
)


def answer(event_id: str, at: float) -> WebhookAnswer:
    webhook = SignedWebhook("app-1", event_id, b"{}", "signature")
    return WebhookAnswer(webhook, "stored", at)


def test_latency_is_from_the_2xx_to_the_later_api_and_a_missing_event_is_counted() -> None:
    both, amplitude_only = str(uuid.uuid4()), str(uuid.uuid4())
    with EmulatorProcess(SETTINGS) as emulator:
        acknowledged = time.time()
        event = mparticle_event()
        event["data"]["source_message_id"] = both
        batch = mparticle_batch(events=[event])
        auth = (MPARTICLE_KEY, MPARTICLE_SECRET)
        assert requests.post(f"{emulator.mparticle_url}/events", json=batch, auth=auth).ok
        events = [amplitude_event(insert_id=both), amplitude_event(insert_id=amplitude_only)]
        body = {"api_key": AMPLITUDE_KEY, "events": events}
        assert requests.post(emulator.amplitude_url, json=body).ok
        done = time.time()
        accepted = acceptance_times(emulator, {"amplitude": 0, "mparticle": 0})
    assert set(accepted["amplitude"]) == {both, amplitude_only}
    assert set(accepted["mparticle"]) == {both}
    found, missing = latencies([answer(both, acknowledged), answer(amplitude_only, 0.0)], accepted)
    assert missing == 1
    (latency,) = found
    assert latency == accepted["amplitude"][both] - acknowledged  # Amplitude accepted it last
    assert 0 <= latency <= done - acknowledged
