"""One day of one integration sent by several processes at once, each a span of users.

Delivery is CPU-bound Python (mapping, attributes, encoding), so one process uses one core
whatever the machine has. With `delivery.workers` > 1 the day's users are split into spans of
about equal events and each span is sent by a process of its own, with its own client and
ledger connection. Nothing else changes: the ledger's leases are what keep concurrent senders
from sending an event twice, as for two runs at once, and a user's events stay in one process,
so the attributes as of each event and the closing attribute update are computed as before.
"""

import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.read import DAY_CHUNK_ROWS
from nami_pipelines.delivery.report import DeliveryReport
from nami_pipelines.delivery.run import deliver_day
from nami_pipelines.delivery.select import count_selected
from nami_pipelines.events.store import EventStore, UserSpan
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository

MIN_EVENTS_PER_WORKER = 50_000

_SUMMED = tuple(item.name for item in fields(DeliveryReport) if item.type is int)


@dataclass(frozen=True, slots=True)
class ShardJob:
    """What a worker process needs to send its span: everything picklable, no connections."""

    database_url: str
    integration: AnyIntegration
    day: date
    users: UserSpan
    resend: bool
    now: datetime
    worker: str
    chunk_rows: int


def deliver_shard(job: ShardJob) -> DeliveryReport:
    """The worker process's whole job (a module-level function, so it can be spawned)."""
    store = EventStore(job.database_url)
    try:
        return deliver_day(
            store=store,
            repository=SnapshotRepository(store.engine),
            ledger=DeliveryLedger(store.engine),
            integration=job.integration,
            client=client_for(job.integration),
            day=job.day,
            resend=job.resend,
            now=job.now,
            worker=job.worker,
            chunk_rows=job.chunk_rows,
            users=job.users,
        )
    finally:
        store.engine.dispose()


def with_workers(integration: AnyIntegration, workers: int) -> AnyIntegration:
    """The integration as sent by `workers` processes."""
    if integration.delivery.workers == workers:
        return integration
    tuning = integration.delivery.model_copy(update={"workers": workers})
    return integration.model_copy(update={"delivery": tuning})


def add_report(total: DeliveryReport, part: DeliveryReport) -> None:
    """Fold one span's report into the day's."""
    for name in _SUMMED:
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.historical = total.historical or part.historical
    for status, reasons in part.reasons.items():
        for reason, count in reasons.items():
            total.count_reason(status, reason, count)


def deliver_day_with_workers(
    *,
    store: EventStore,
    repository: SnapshotRepository,
    ledger: DeliveryLedger,
    integration: AnyIntegration,
    day: date,
    resend: bool = False,
    now: datetime | None = None,
    worker: str | None = None,
    chunk_rows: int = DAY_CHUNK_ROWS,
    progress: Callable[[DeliveryReport], None] | None = None,
    min_events_per_worker: int = MIN_EVENTS_PER_WORKER,
) -> DeliveryReport:
    """`deliver_day` in this process, or in up to `integration.delivery.workers` processes at
    once when the day has events enough to keep them busy (starting one costs about as much as
    sending ten thousand events); progress is reported as each span finishes."""
    now = now or datetime.now(UTC)
    worker = worker or f"{integration.name}-{uuid.uuid4().hex[:12]}"
    workers = integration.delivery.workers
    if workers > 1:
        workers = min(workers, count_selected(store, integration, day) // min_events_per_worker)
    spans = (
        store.user_spans(
            occurred_after=day_end(day - timedelta(days=1)),
            occurred_until=day_end(day),
            app_id=integration.app_id,
            parts=workers,
        )
        if workers > 1
        else []
    )
    # The processes actually started share the project's rate (see `SendPacer`).
    integration = with_workers(integration, max(len(spans), 1))
    if len(spans) < 2:
        return deliver_day(
            store=store,
            repository=repository,
            ledger=ledger,
            integration=integration,
            client=client_for(integration),
            day=day,
            resend=resend,
            now=now,
            worker=worker,
            chunk_rows=chunk_rows,
            progress=progress,
        )
    started = time.monotonic()
    jobs = [
        ShardJob(store.url, integration, day, span, resend, now, f"{worker}/{n}", chunk_rows)
        for n, span in enumerate(spans)
    ]
    report = DeliveryReport(integration=integration.name, day=day)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=spawn) as pool:
        for finished in as_completed([pool.submit(deliver_shard, job) for job in jobs]):
            add_report(report, finished.result())
            report.duration_seconds = time.monotonic() - started
            if progress is not None:
                progress(report)
    return report
