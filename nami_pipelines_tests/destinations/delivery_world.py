"""A generated day loaded into a real database, and integrations pointed at the emulator, for the
destination tests that deliver through the ledger over real HTTP."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from nami_pipelines.config import AnyIntegration, parse_integrations
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.run import DeliveryReport, deliver_day
from nami_pipelines.destinations.http import RetryPolicy
from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines.snapshots.repository import SnapshotRepository

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.1)


@dataclass
class DeliveryWorld:
    store: EventStore
    ledger: DeliveryLedger
    emulator: EmulatorProcess
    day: date

    def integration(self, entry: dict[str, Any]) -> AnyIntegration:
        (integration,) = parse_integrations({"integrations": [entry]})
        return integration

    def deliver(self, integration: AnyIntegration) -> DeliveryReport:
        return deliver_day(
            store=self.store,
            repository=SnapshotRepository(self.store.engine),
            ledger=self.ledger,
            integration=integration,
            client=client_for(integration, policy=FAST, throttle_hold_seconds=0.3),
            day=self.day,
        )

    def statuses(self, name: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.ledger.entries(name):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts


def delivery_world(
    store: EventStore, emulator: EmulatorProcess, folder: Path, users: int = 12
) -> DeliveryWorld:
    """Yesterday's events of `users` generated users, loaded into `store`."""
    day = datetime.now(UTC).date() - timedelta(days=1)
    source = folder / "events.ndjson"
    write_events_ndjson(source, users=users, days=1, start=day, seed=11)
    load_ndjson_file(source, store)
    return DeliveryWorld(store, DeliveryLedger(store.engine), emulator, day)


def amplitude_entry(endpoint: str, **options: Any) -> dict[str, Any]:
    return {
        "name": "amplitude_prod",
        "type": "amplitude",
        "app_id": PRODUCTION_APP_ID,
        "endpoint": endpoint,
        "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
        "user_id": "external_id",
        "fallback_to_nami_user_id": True,
        **options,
    }


def mparticle_entry(base_url: str, **options: Any) -> dict[str, Any]:
    return {
        "name": "ios_feed",
        "type": "mparticle",
        "app_id": PRODUCTION_APP_ID,
        "platform": "apple",
        "base_url": base_url,
        "credentials": {"key_env": "IOS_FEED_KEY", "secret_env": "IOS_FEED_SECRET"},
        "customer_id": "nami_user_id",
        **options,
    }
