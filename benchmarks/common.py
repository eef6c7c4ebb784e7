"""What every delivery benchmark shares: the emulator's settings and credentials, the
integrations our senders run with, and the day's events as the product would send them.

The credentials are made up for the local emulator; they travel in environment variables, by
name, exactly as a user's integrations file names them.
"""

import os
from datetime import UTC, date, datetime
from typing import Any, Literal

from nami_pipelines.config import AnyIntegration, parse_integrations
from nami_pipelines.delivery.later import LaterEvents
from nami_pipelines.delivery.read import EVENT_ID, day_chunks
from nami_pipelines.delivery.state import prepare_chunk
from nami_pipelines.destinations.outgoing import OutgoingEvents
from nami_pipelines.emulators import EmulatorSettings
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID
from nami_pipelines.snapshots.repository import SnapshotRepository

Api = Literal["amplitude", "mparticle"]
APIS: tuple[Api, ...] = ("amplitude", "mparticle")

MPARTICLE_KEY = "bench-mparticle-key"
MPARTICLE_SECRET = "bench-mparticle-secret"
AMPLITUDE_KEY = "bench-amplitude-key"
CREDENTIAL_VARIABLES = {
    "NAMI_BENCH_MPARTICLE_KEY": MPARTICLE_KEY,
    "NAMI_BENCH_MPARTICLE_SECRET": MPARTICLE_SECRET,
    "NAMI_BENCH_AMPLITUDE_KEY": AMPLITUDE_KEY,
}
DEFAULT_MAX_IN_FLIGHT = 4


def export_credentials() -> None:
    """Puts the emulator's credentials where the integrations look for them (and where child
    processes inherit them)."""
    os.environ.update(CREDENTIAL_VARIABLES)


def emulator_settings(*, amplitude_project_eps: float = 0.0) -> EmulatorSettings:
    """Throughput settings: payloads are counted and deduplicated but not kept.

    Schema validation is off for every throughput case alike, because the official mParticle
    SDK writes the customer id as `customerid`, which the emulator's copy of the schema (with
    `customer_id` and no other properties) refuses; size and attribute limits still apply.
    """
    return EmulatorSettings(
        mparticle_credentials={MPARTICLE_KEY: MPARTICLE_SECRET},
        amplitude_api_keys=[AMPLITUDE_KEY],
        amplitude_project_eps=amplitude_project_eps,
        validate_schema=False,
        record_payloads=False,
    )


def integration_document(
    api: Api, url: str, name: str, *, delivery: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One integration of the integrations file, pointed at the emulator with the benchmark
    credentials: every event of the production app, users keyed by their Nami user id."""
    common: dict[str, Any] = {"name": name, "app_id": PRODUCTION_APP_ID}
    if delivery is not None:
        common["delivery"] = delivery
    if api == "mparticle":
        return {
            **common,
            "type": "mparticle",
            "platform": "all",
            "base_url": url,
            "credentials": {
                "key_env": "NAMI_BENCH_MPARTICLE_KEY",
                "secret_env": "NAMI_BENCH_MPARTICLE_SECRET",
            },
            "customer_id": "nami_user_id",
        }
    return {
        **common,
        "type": "amplitude",
        "endpoint": url,
        "credentials": {"api_key_env": "NAMI_BENCH_AMPLITUDE_KEY"},
        "user_id": "nami_user_id",
    }


def integration_for(
    api: Api,
    url: str,
    *,
    name: str | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    workers: int = 1,
) -> AnyIntegration:
    """An integration that sends every selected event of the production app: ids are the Nami
    user id (nothing is skipped for a missing external id) and the mParticle feed takes every
    platform, so both APIs receive the same events."""
    export_credentials()
    delivery = {"max_in_flight": max_in_flight, "workers": workers}
    document = integration_document(api, url, name or f"bench_{api}", delivery=delivery)
    return parse_integrations({"integrations": [document]})[0]


def day_outgoing(store: EventStore, integration: AnyIntegration, day: date) -> OutgoingEvents:
    """The day's selected events, each `user.*` event with the attributes as of itself: what
    `deliver_day` hands the mapping, chunk by chunk, here in one. The official SDKs and the
    ceiling start from these, built before their clocks start, so they get the attribute lookup
    for free."""
    repository = SnapshotRepository(store.engine)
    outgoing = OutgoingEvents()
    now = datetime.now(UTC)
    later = LaterEvents(store, day, now)
    for chunk in day_chunks(store, integration, day):
        if chunk.selected:
            claimed = {row[EVENT_ID] for row in chunk.selected}
            events = prepare_chunk(store, repository, chunk, claimed, day, now, later).events
            outgoing.rows += events.rows
            outgoing.payloads += events.payloads
            outgoing.attributes += events.attributes
    return outgoing
