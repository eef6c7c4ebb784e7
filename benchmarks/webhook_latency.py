"""Issue 13 item 6: the latency from a webhook's 2xx to the emulator accepting its event, with
the daemon and `new_events_sensor` running (the session `benchmarks.latency` sets up).

The events of a generated day go to `nami-pipelines receive` as Nami's signed bodies, spread at
a steady rate over two sensor intervals, so they reach the receiver at every phase of the
sensor's cycle, as real traffic does. Each answer's 2xx time is taken by the sender; the
emulator stamps each event it accepts (`recorded_at`, the same machine's wall clock). An event's
latency is from its 2xx to the later of the two APIs accepting it.
"""

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Final

from benchmarks.latency_row import SECTION, latency_row
from benchmarks.report import Row, skipped_row
from nami_pipelines.demo_webhooks import (
    SignedWebhook,
    WebhookAnswer,
    post_webhooks,
    receiver_process,
    signed_webhooks,
)
from nami_pipelines.destinations.mparticle_ids import message_id
from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines.receiver.apps import SHARED_SECRET_VARIABLE
from nami_pipelines.samples import PRODUCTION_APP_ID, generate_events

SECRET: Final = "latency-webhook-secret"
INTERVALS_OF_TRAFFIC: Final = 2
APIS: Final = ("amplitude", "mparticle")


def day_webhooks(count: int, day: date, seed: int) -> list[SignedWebhook]:
    """About `count` bodies of the production app (the integrations' app) for `day`: users are
    added until the day has enough events, then the list is cut to `count`."""
    users = max(5, count // 3)
    while True:
        records = generate_events(users, 1, day, seed)
        webhooks = signed_webhooks(records, SECRET, app_ids=(PRODUCTION_APP_ID,))
        if len(webhooks) >= count:
            return webhooks[:count]
        users *= 2


def _event_id(api: str, entry: Mapping[str, Any]) -> str | None:
    event = entry.get("event") or {}
    if api == "amplitude":
        return event.get("insert_id")
    return (event.get("data") or {}).get("source_message_id")


def acceptance_times(
    emulator: EmulatorProcess, offsets: Mapping[str, int]
) -> dict[str, dict[str, float]]:
    """Per API, each event id accepted after `offsets[api]` records, with when it was accepted
    (mParticle's records carry the message id the event id becomes)."""
    return {
        api: {
            event_id: entry["recorded_at"]
            for entry in emulator.received(api, offset=offsets[api])
            if (event_id := _event_id(api, entry)) is not None
        }
        for api in APIS
    }


def latencies(
    answers: list[WebhookAnswer], accepted: Mapping[str, Mapping[str, float]]
) -> tuple[list[float], int]:
    """Seconds from each 2xx to the later API's acceptance, and how many events either API
    never accepted."""
    found: list[float] = []
    missing = 0
    for answer in answers:
        event_id = answer.webhook.event_id
        keys = {"amplitude": event_id, "mparticle": message_id(event_id)}
        times = [accepted[api].get(keys[api]) for api in APIS]
        if answer.acknowledged_at is None or None in times:
            missing += 1
            continue
        found.append(max(times) - answer.acknowledged_at)
    return found, missing


def webhook_latency_row(
    folder: Path,
    emulator: EmulatorProcess,
    environment: Mapping[str, str],
    *,
    webhooks: list[SignedWebhook],
    interval: int,
    wait_for: Callable[[int, float], float | None],
    expected_before: int,
    budget: float,
) -> Row:
    """Posts the webhooks to a receiver on the session's database and integrations file, waits
    for both APIs to accept them, and reports p50 and p95 of their latencies."""
    offsets = {api: emulator.stats()[api]["unique_events"] for api in APIS}
    rate = len(webhooks) / (INTERVALS_OF_TRAFFIC * interval)
    receiver_environment = {**environment, SHARED_SECRET_VARIABLE: SECRET}
    integrations = Path(environment["NAMI_INTEGRATIONS_FILE"])
    with receiver_process(integrations, receiver_environment, folder / "receiver.log") as url:
        answers = post_webhooks(url, webhooks, rate=rate)
    stored = sum(1 for answer in answers if answer.fate == "stored")
    done = wait_for(expected_before + stored, budget)
    accepted = acceptance_times(emulator, offsets)
    found, missing = latencies(answers, accepted)
    case = f"webhook 2xx to emulator, sensor every {interval}s ({len(webhooks)} webhooks)"
    if not found:
        return skipped_row(SECTION, case, "no webhook event was accepted", error=True)
    return latency_row(
        case,
        found,
        events=len(found),
        exactly_once=done is not None and missing == 0 and stored == len(webhooks),
        note=f", {rate:.1f} webhooks/s",
        details={
            "max": max(found),
            "rate_per_second": rate,
            "stored": stored,
            "not_accepted": missing,
        },
    )
