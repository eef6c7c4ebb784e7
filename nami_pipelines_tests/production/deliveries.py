"""What each integration should have received, worked out on the side.

The expected set is computed from the event table and the selection written out by hand
(`PLATFORMS_SENT`: the app and platforms), with days taken from `occurred_at` in UTC; the
only thing taken from the product is the ledger's list of events it chose to skip (no customer
id, sandbox dropped, ...), which must then be absent from the emulator.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from nami_pipelines.config import AnyIntegration, MParticleIntegration
from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED
from nami_pipelines.emulators import EmulatorClient
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID
from nami_pipelines_tests.conftest import (
    AMPLITUDE_KEYS,
    MPARTICLE_KEYS,
    PLATFORMS_SENT,
    sent_by_hand,
)


def all_events(store: EventStore) -> pd.DataFrame:
    frames = list(store.read_events())
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    events["day"] = events["occurred_at"].dt.date
    return events


def selected_ids(
    events: pd.DataFrame, integration: AnyIntegration, days: Iterable[date] | None = None
) -> set[str]:
    """The events this integration must account for, as `PLATFORMS_SENT` writes them out: the
    production app's, of its platforms, on the given UTC days (all days when None)."""
    mine = events if days is None else events[events["day"].isin(set(days))]
    return sent_by_hand(mine, PRODUCTION_APP_ID, PLATFORMS_SENT[integration.name])


def credential_of(integration: AnyIntegration) -> tuple[str, str]:
    """(emulator API, credential the emulator files the integration's requests under)."""
    if isinstance(integration, MParticleIntegration):
        return "mparticle", MPARTICLE_KEYS[integration.name][0]
    return "amplitude", AMPLITUDE_KEYS[integration.name]


def received_ids(emulator: EmulatorClient, integration: AnyIntegration) -> list[str]:
    """Event ids the emulator accepted for this integration (deduplicated by the API, as
    mParticle and Amplitude do), in arrival order."""
    api, credential = credential_of(integration)
    return [
        record["event"]["data"]["source_message_id"]
        if api == "mparticle"
        else record["event"]["insert_id"]
        for record in emulator.received(api)
        if record["credential"] == credential
    ]


def duplicate_sends(emulator: EmulatorClient, integration: AnyIntegration) -> int:
    """Events the integration sent more than once (the API absorbed them by id)."""
    api, credential = credential_of(integration)
    per_credential = emulator.stats()[api]["per_credential"].get(credential, {})
    return int(per_credential.get("duplicate_events", 0))


@dataclass(frozen=True)
class LedgerView:
    """The ledger's outcome per event for one integration."""

    accepted: set[str]
    rejected: set[str]
    skipped: set[str]
    pending: set[str]

    @property
    def all(self) -> set[str]:
        return self.accepted | self.rejected | self.skipped | self.pending

    @classmethod
    def of(cls, store: EventStore, integration: AnyIntegration) -> "LedgerView":
        by_status: dict[str, set[str]] = {ACCEPTED: set(), REJECTED: set(), SKIPPED: set()}
        by_status[PENDING] = set()
        for entry in DeliveryLedger(store.engine).entries(integration.name):
            by_status.setdefault(entry["status"], set()).add(entry["event_id"])
        return cls(
            accepted=by_status[ACCEPTED],
            rejected=by_status[REJECTED],
            skipped=by_status[SKIPPED],
            pending=by_status[PENDING],
        )


@dataclass(frozen=True)
class DeliverySnapshot:
    """The event table, the ledger and what the emulator received, at one moment: taken when
    the backfill ends, so its test checks that moment whatever ran before it."""

    events: pd.DataFrame
    ledgers: dict[str, LedgerView]
    received: dict[str, list[str]]
    duplicates: dict[str, int]

    @classmethod
    def capture(
        cls, store: EventStore, emulator: EmulatorClient, integrations: Iterable[AnyIntegration]
    ) -> "DeliverySnapshot":
        chosen = list(integrations)
        return cls(
            events=all_events(store),
            ledgers={i.name: LedgerView.of(store, i) for i in chosen},
            received={i.name: received_ids(emulator, i) for i in chosen},
            duplicates={i.name: duplicate_sends(emulator, i) for i in chosen},
        )
