"""One day of one integration sent by several processes at once, each a span of users.

Delivery is CPU-bound Python (mapping, attributes, encoding), so one process uses one core
whatever the machine has. With `delivery.workers` = N > 1 the day's users are split into spans
of about equal events, a few per process, and this process and N - 1 others (each with its own
client and ledger connection) take the next span whenever they are free. Nothing else changes:
the ledger's leases are what keep concurrent senders from sending an event twice, as for two
runs at once, and a user's events stay in one process, so the attributes as of each event and
the closing attribute update are computed as before.

On Linux the other processes are forked: they start at once with everything this process has
imported (spawning one cost about two seconds of CPU for its imports, a tenth of a
200,000-event day's work, and it started sending that much later). Before the fork this
process closes its pooled connections, so no child shares an open SQLite connection's locks,
and each child's engines start pools of their own (`events/engine.py`); elsewhere, they are
spawned.
"""

import multiprocessing
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from nami_pipelines.config import AnyIntegration
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.read import DAY_CHUNK_ROWS
from nami_pipelines.delivery.report import DeliveryReport
from nami_pipelines.delivery.run import deliver_day
from nami_pipelines.destinations.client import DestinationClient
from nami_pipelines.destinations.selection import event_filter
from nami_pipelines.events.store import EventStore, UserSpan
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository

MIN_EVENTS_PER_WORKER = 50_000
# Spans per process, in decreasing sizes: whoever is free takes the next, so a process that
# started late (a spawned one pays for its imports) sends less, and the last spans
# are small, so nobody waits long for the one still sending. Each span costs a query and a
# partial request or two, so they are not made smaller still.
SPANS_PER_WORKER = 4
# The spans are cut from a sample of about this many of the day's events (any app's): enough
# for even spans, and planning then costs a tenth of reading the day. The day's events are
# counted to `MAX_COUNTED_ROWS` at most, so the sample of a bigger day is bigger.
PLANNING_SAMPLE_ROWS = 16_384
MAX_COUNTED_ROWS = 1_000_000
# macOS can fork, but its system libraries are not safe in a forked child.
START_METHOD = "fork" if sys.platform == "linux" else "spawn"


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


@dataclass(frozen=True, slots=True)
class SpanSender:
    """What a process sends its spans with: kept for every span it takes, so connections and
    the HTTP session are made once per process."""

    store: EventStore
    repository: SnapshotRepository
    ledger: DeliveryLedger
    client: DestinationClient

    def send(self, job: ShardJob) -> DeliveryReport:
        return deliver_day(
            store=self.store,
            repository=self.repository,
            ledger=self.ledger,
            integration=job.integration,
            client=self.client,
            day=job.day,
            resend=job.resend,
            now=job.now,
            worker=job.worker,
            chunk_rows=job.chunk_rows,
            users=job.users,
        )


# In a worker process: the database it opened while the day was planned (see `open_database`),
# and its sender per (database, integration), made by its first span.
_DATABASES: dict[str, tuple[EventStore, SnapshotRepository, DeliveryLedger]] = {}
_SENDERS: dict[tuple[str, str], SpanSender] = {}


def open_database(database_url: str) -> None:
    """A worker process's first task, given while this process still plans the day: its
    imports and its connection are made by then, so its first span starts at once."""
    if database_url not in _DATABASES:
        store = EventStore(database_url)
        _DATABASES[database_url] = (
            store,
            SnapshotRepository(store.engine),
            DeliveryLedger(store.engine),
        )


def deliver_shard(job: ShardJob) -> DeliveryReport:
    """A worker process's span (a module-level function, so a spawned process finds it)."""
    key = (job.database_url, job.integration.name)
    sender = _SENDERS.get(key)
    if sender is None:
        open_database(job.database_url)
        store, repository, ledger = _DATABASES[job.database_url]
        sender = SpanSender(store, repository, ledger, client_for(job.integration))
        _SENDERS[key] = sender
    return sender.send(job)


def with_workers(integration: AnyIntegration, workers: int) -> AnyIntegration:
    """The integration as sent by `workers` processes."""
    if integration.delivery.workers == workers:
        return integration
    tuning = integration.delivery.model_copy(update={"workers": workers})
    return integration.model_copy(update={"delivery": tuning})


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
    once when the day has events enough to keep them busy (each span costs a query and partial
    requests, a spawned process its imports); progress is reported as each span finishes."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    worker = worker or f"{integration.name}-{uuid.uuid4().hex[:12]}"
    workers = integration.delivery.workers
    window = {"occurred_after": day_end(day - timedelta(days=1)), "occurred_until": day_end(day)}
    alone = {
        "store": store,
        "repository": repository,
        "ledger": ledger,
        "day": day,
        "resend": resend,
        "now": now,
        "worker": worker,
        "chunk_rows": chunk_rows,
        "progress": progress,
    }
    rows = store.count_window(**window, up_to=MAX_COUNTED_ROWS) if workers > 1 else 0
    if rows < 2 * min_events_per_worker:
        return _deliver_alone(integration, **alone)
    # The other processes start now and open the database while the day is planned here.
    with _SpanQueue(store, processes=workers - 1) as queue:
        spans = store.user_spans(
            event_filter(integration),
            **window,
            shares=range(workers * SPANS_PER_WORKER, 0, -1),
            every=max(1, rows // PLANNING_SAMPLE_ROWS),
        )
        selected = sum(span.events for span in spans)
        senders = min(workers, selected // min_events_per_worker, len(spans))
        if senders < 2:
            queue.cancel()
            return _deliver_alone(integration, **alone)
        # The processes actually sending share the project's rate (see `SendPacer`).
        integration = with_workers(integration, senders)
        report = DeliveryReport(integration=integration.name, day=day)
        queue.start(
            (
                ShardJob(
                    store.url, integration, day, span, resend, now, f"{worker}/{n}", chunk_rows
                )
                for n, span in enumerate(spans)
            ),
            processes=senders - 1,
        )
        here = SpanSender(store, repository, ledger, client_for(integration))
        while (job := queue.take()) is not None:
            report.add(here.send(job))
            for part in queue.finished():
                report.add(part)
            report.duration_seconds = time.monotonic() - started
            if progress is not None:
                progress(report)
        for part in queue.wait():
            report.add(part)
    report.duration_seconds = time.monotonic() - started
    if progress is not None:
        progress(report)
    return report


def _deliver_alone(integration: AnyIntegration, **arguments: Any) -> DeliveryReport:
    """The day in this process only."""
    integration = with_workers(integration, 1)
    return deliver_day(integration=integration, client=client_for(integration), **arguments)


class _SpanQueue:
    """The day's spans, taken one at a time by this process and by `processes` others: whoever
    is free takes the next, so a process that started late or drew a slow span sends less, and
    nobody waits for the slowest."""

    def __init__(self, store: EventStore, *, processes: int) -> None:
        self._jobs: deque[ShardJob] = deque()
        self._lock = threading.RLock()  # `_feed` may run again inside itself
        self._futures: list[Future[DeliveryReport]] = []
        if START_METHOD == "fork":
            store.engine.dispose()  # no open connection of this process goes into a child
        self._pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context(START_METHOD)
        )
        # One task each: the processes start with the first (all of them, when forked; one
        # per submit, when spawned).
        for _ in range(processes):
            self._pool.submit(open_database, store.url)

    def start(self, jobs: Iterable[ShardJob], *, processes: int) -> None:
        """Queue the spans and hand one to each of `processes` of the others."""
        with self._lock:
            self._jobs.extend(jobs)
        for _ in range(processes):
            self._feed()

    def cancel(self) -> None:
        """No span for the other processes: they exit once booted."""
        with self._lock:
            self._jobs.clear()

    def take(self) -> ShardJob | None:
        with self._lock:
            return self._jobs.popleft() if self._jobs else None

    def _feed(self, _done: Future[DeliveryReport] | None = None) -> None:
        """Give a free process the next span (taken and recorded at once, so `wait` never
        misses one being handed out)."""
        with self._lock:
            if not self._jobs:
                return
            future = self._pool.submit(deliver_shard, self._jobs.popleft())
            self._futures.append(future)
        future.add_done_callback(self._feed)

    def finished(self) -> list[DeliveryReport]:
        """Reports of the other processes' spans done since the last call (raises a span's
        failure)."""
        with self._lock:
            done = [f for f in self._futures if f.done()]
        reports = [future.result() for future in done]
        with self._lock:
            self._futures = [f for f in self._futures if f not in done]
        return reports

    def wait(self) -> list[DeliveryReport]:
        """Every remaining report, once the other processes are done."""
        reports: list[DeliveryReport] = []
        while True:
            with self._lock:
                pending = list(self._futures)
                self._futures = []
            if not pending:
                return reports
            reports += [future.result() for future in pending]

    def __enter__(self) -> "_SpanQueue":
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._jobs.clear()  # a failure here: the others finish what they hold, no more
        self._pool.shutdown(wait=True)
