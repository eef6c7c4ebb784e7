"""Three hand-written transactions of 2026-11-29 in a real database, and integrations with a
`revenue:` block pointed at the emulator: what the revenue tests deliver over real HTTP."""

from dataclasses import dataclass
from datetime import date
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
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines_tests.builders import APP_ID, GOOGLE_PLATFORM, EventLog

DAY = date(2026, 11, 29)
FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.1)
# The store's prices, as Nami reports them.
EUR_APPLE = "txn-eur-apple"  # 9.99 EUR, one, on iOS
USD_GOOGLE = "txn-usd-google"  # 4.99 USD, two, on Android
GBP_APPLE = "txn-gbp-apple"  # 7.49 GBP, one, on iOS
RATES_HEADER = "date,currency,rate\n"
EUR_RATE = "2026-11-29,EUR,1.08\n"
GBP_RATE = "2026-11-29,GBP,1.27\n"


def transaction_payload(txn: str, price: float, currency: str, quantity: int) -> dict[str, Any]:
    return {
        "transaction_id": txn,
        "original_transaction_id": f"{txn}-original",
        "sku_ref_id": "premium_monthly",
        "price": price,
        "currency": currency,
        "quantity": quantity,
        "app_env": "production",
        "purchase_env": "production",
    }


def load_transactions(store: EventStore, folder: Path) -> None:
    log = EventLog()
    for txn, at, price, currency, quantity, platform in (
        (EUR_APPLE, "2026-11-29T09:00:00+00:00", 9.99, "EUR", 1, None),
        (USD_GOOGLE, "2026-11-29T10:00:00+00:00", 4.99, "USD", 2, GOOGLE_PLATFORM),
        (GBP_APPLE, "2026-11-29T23:30:00+00:00", 7.49, "GBP", 1, None),
    ):
        record = log.device_event(
            f"user-{txn}",
            "device.transaction",
            at,
            device=f"device-{txn}",
            external_id=f"external-{txn}",
            payload=transaction_payload(txn, price, currency, quantity),
            **({"platform": platform} if platform else {}),
        )
        record["event_id"] = txn
    source = folder / "transactions.ndjson"
    source.write_text(log.ndjson())
    load_ndjson_file(source, store)


@dataclass
class RevenueWorld:
    store: EventStore
    emulator: EmulatorProcess
    folder: Path

    def amplitude(self, **revenue: Any) -> AnyIntegration:
        return self.integration(
            {
                "name": "amplitude_prod",
                "type": "amplitude",
                "app_id": APP_ID,
                "endpoint": self.emulator.url,
                "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
                "revenue": revenue,
            }
        )

    def mparticle(self, **revenue: Any) -> AnyIntegration:
        return self.integration(
            {
                "name": "ios_feed",
                "type": "mparticle",
                "app_id": APP_ID,
                "platform": "apple",
                "base_url": self.emulator.url,
                "credentials": {"key_env": "IOS_FEED_KEY", "secret_env": "IOS_FEED_SECRET"},
                "customer_id": "external_id",
                **({"revenue": revenue} if revenue else {}),
            }
        )

    def integration(self, entry: dict[str, Any]) -> AnyIntegration:
        (integration,) = parse_integrations({"integrations": [entry]}, base_dir=self.folder)
        return integration

    def rates_file(self, *lines: str) -> str:
        (self.folder / "rates.csv").write_text(RATES_HEADER + "".join(lines))
        return "rates.csv"

    def deliver(self, integration: AnyIntegration) -> DeliveryReport:
        return deliver_day(
            store=self.store,
            repository=SnapshotRepository(self.store.engine),
            ledger=DeliveryLedger(self.store.engine),
            integration=integration,
            client=client_for(integration, policy=FAST),
            day=DAY,
        )

    def ledger_rows(self, name: str) -> dict[str, dict[str, Any]]:
        return {row["event_id"]: row for row in DeliveryLedger(self.store.engine).entries(name)}

    def amplitude_events(self) -> dict[str, dict[str, Any]]:
        """What the emulator took, by insert_id; each id at most once, or the test fails."""
        events = [record["event"] for record in self.emulator.received("amplitude")]
        by_id = {event["insert_id"]: event for event in events}
        assert len(by_id) == len(events), "an event reached Amplitude twice"
        return by_id

    def mparticle_events(self) -> dict[str, dict[str, Any]]:
        """What the emulator took, by transaction id; each at most once."""
        events = [record["event"] for record in self.emulator.received("mparticle")]
        by_id = {event["data"]["product_action"]["transaction_id"]: event for event in events}
        assert len(by_id) == len(events), "an event reached mParticle twice"
        return by_id
