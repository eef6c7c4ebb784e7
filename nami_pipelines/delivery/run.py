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
from datetime import UTC, date, datetime, timedelta

from nami_pipelines.config import AnyIntegration, MParticleIntegration
from nami_pipelines.delivery.collection import collect_chunk_garbage, collection_paused
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.ledger_writer import LedgerWriter
from nami_pipelines.delivery.profiles import (
    attribute_targets,
    bring_profiles_current,
    sync_attributes,
)
from nami_pipelines.delivery.read import DAY_CHUNK_ROWS, day_chunks
from nami_pipelines.delivery.record import LedgerSink, claim_rows
from nami_pipelines.delivery.report import DeliveryReport
from nami_pipelines.delivery.select import bound_platform, count_selected, selects
from nami_pipelines.delivery.state import prepare_chunk
from nami_pipelines.destinations.client import DestinationClient
from nami_pipelines.events.store import EventStore, UserSpan
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository

__all__ = [
    "DAY_CHUNK_ROWS",
    "DeliveryReport",
    "attribute_targets",
    "bound_platform",
    "count_selected",
    "deliver_day",
    "is_historical",
    "selects",
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
    with collection_paused(), LedgerWriter() as writer:
        for chunk in day_chunks(store, integration, day, chunk_rows, users):
            report.selected += len(chunk.selected)
            if not chunk.selected:
                continue
            claimed = claim_rows(
                ledger, integration.name, chunk.selected, day, worker=worker, resend=resend
            )
            report.already_done += len(chunk.selected) - len(claimed)
            if not claimed:
                continue
            prepared = prepare_chunk(store, repository, chunk, claimed, day, now)
            sink = LedgerSink(ledger, writer, integration.name, worker, report, prepared.carried)
            client.send_events(prepared.outgoing, historical=report.historical, sink=sink)
            sink.remember_profiles()
            bring_profiles_current(client, sink, prepared, now)
            report.copy_stats(client)
            collect_chunk_garbage()
            if progress is not None:
                report.duration_seconds = time.monotonic() - started
                progress(report)
    report.duration_seconds = time.monotonic() - started
    return report
