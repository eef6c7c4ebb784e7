"""One (day, integration), in one pass over the day's rows: read → state → map → pack → send →
record, chunk by chunk, then the closing profile update of the users each chunk touched.

Each stage has a module: `read` (rows grouped by user), `state` (attributes as of each event and
at the end), the destination client (map, pack, send; `nami_pipelines.destinations`), `record`
(ledger claims and outcomes) and `profiles` (attribute-only updates). This is where they meet:
the client never reads the database and the store never knows a destination.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from nami_pipelines.config import AnyIntegration, MParticleIntegration
from nami_pipelines.delivery.collection import collect_chunk_garbage, collection_paused
from nami_pipelines.delivery.later import LaterEvents
from nami_pipelines.delivery.ledger import Claim, DeliveryLedger
from nami_pipelines.delivery.ledger_writer import LedgerWriter
from nami_pipelines.delivery.profiles import (
    attribute_targets,
    bring_profiles_current,
    sync_attributes,
)
from nami_pipelines.delivery.read import DAY_CHUNK_ROWS, DayChunk, day_chunks
from nami_pipelines.delivery.record import LedgerSink, claim_rows
from nami_pipelines.delivery.report import DeliveryReport, request_counts
from nami_pipelines.delivery.revenue_rates import revenue_conversion
from nami_pipelines.delivery.select import count_selected
from nami_pipelines.delivery.state import prepare_chunk
from nami_pipelines.destinations.client import DestinationClient
from nami_pipelines.destinations.revenue import RevenueConversion, with_converted_revenue
from nami_pipelines.events.store import EventStore, UserSpan
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository

__all__ = [
    "DAY_CHUNK_ROWS",
    "DeliveryReport",
    "attribute_targets",
    "count_selected",
    "deliver_day",
    "is_historical",
    "sync_attributes",
]

# Amplitude's Batch API is for days older than this (docs/amplitude.md); an mParticle feed
# says its own age with `historical_after_days`.
AMPLITUDE_HISTORICAL_DAYS = 30


def is_historical(integration: AnyIntegration, day: date, now: datetime) -> bool:
    """Whether the whole day is older than the integration's historical age: its events then go
    to mParticle's historical endpoint (or Amplitude's Batch API, where the integration asks)."""
    days = (
        integration.historical_after_days
        if isinstance(integration, MParticleIntegration)
        else AMPLITUDE_HISTORICAL_DAYS
    )
    return day_end(day) < now - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class _DayRun:
    """What every chunk of one `deliver_day` call is sent with."""

    store: EventStore
    repository: SnapshotRepository
    ledger: DeliveryLedger
    integration: AnyIntegration
    client: DestinationClient
    day: date
    resend: bool
    now: datetime
    worker: str
    revenue: RevenueConversion | None  # the rates, read once per run
    later: LaterEvents  # the events after the day, counted (and if few, read) once per run

    def send(self, chunk: DayChunk, writer: LedgerWriter, report: DeliveryReport) -> None:
        """Claim, state, map, pack, send and record one chunk, then its closing updates."""
        name = self.integration.name
        report.selected += len(chunk.selected)
        if not chunk.selected:
            return
        claim = claim_rows(
            self.ledger, name, chunk.selected, self.day, worker=self.worker, resend=self.resend
        )
        report.already_done += len(chunk.selected) - len(claim.events)
        if not claim.users:
            return
        try:
            if claim.events:
                self._send_claimed(chunk, claim, writer, report)
        finally:
            # Also when the integration stopped: what it left has its reason in the ledger.
            writer.submit(self.ledger.end_claims, name, self.day, claim.users, worker=self.worker)

    def _send_claimed(
        self, chunk: DayChunk, claim: Claim, writer: LedgerWriter, report: DeliveryReport
    ) -> None:
        prepared = prepare_chunk(
            self.store, self.repository, chunk, claim.events, self.day, self.now, self.later
        )
        sink = LedgerSink(
            self.ledger,
            writer,
            self.integration.name,
            self.worker,
            report,
            claim,
            prepared.events,
            prepared.carried,
        )
        # A transaction with no rate for its day is never sent with a guessed amount: it stays
        # pending, with the reason, until a run finds the rate.
        outgoing, held = with_converted_revenue(prepared.events, self.revenue)
        for unresolved in held:
            sink.unresolved(unresolved)
        self.client.send_events(outgoing, historical=report.historical, sink=sink)
        sink.remember_profiles()
        bring_profiles_current(self.client, sink, prepared, self.now)


def deliver_day(
    *,
    store: EventStore,
    repository: SnapshotRepository,
    ledger: DeliveryLedger,
    integration: AnyIntegration,
    client: DestinationClient,
    day: date,
    resend: bool = False,
    now: datetime | None = None,
    worker: str | None = None,
    chunk_rows: int = DAY_CHUNK_ROWS,
    progress: Callable[[DeliveryReport], None] | None = None,
    users: UserSpan | None = None,
) -> DeliveryReport:
    """Send the day's selected events (of the `users` span only, if given) and the attribute
    updates of the users they touch."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    worker = worker or f"{integration.name}-{uuid.uuid4().hex[:12]}"
    report = DeliveryReport(integration=integration.name, day=day)
    report.historical = is_historical(integration, day, now)
    before = request_counts(client)
    with collection_paused(), LedgerWriter(ledger.engine) as writer:
        revenue = revenue_conversion(integration, store, day)
        later = LaterEvents(store, day, now)
        run = _DayRun(
            store, repository, ledger, integration, client, day, resend, now, worker, revenue, later
        )
        for chunk in day_chunks(store, integration, day, chunk_rows, users):
            run.send(chunk, writer, report)
            # Once `send` returned and the chunk is let go, its rows, payloads and dicts are
            # freed: what is left to look at is what survives, and any cycles the chunk made.
            del chunk
            collect_chunk_garbage()
            if progress is not None:
                report.copy_stats(client, before)
                report.duration_seconds = time.monotonic() - started
                progress(report)
    report.copy_stats(client, before)
    report.duration_seconds = time.monotonic() - started
    return report
