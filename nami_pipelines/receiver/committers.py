"""Committing received webhooks: in groups (one transaction for whatever arrived together), or
one transaction per request (the plain way, kept to measure against).

Each request waits for the commit that holds its row and is answered only after it, so an
acknowledgement never covers an event that is not stored. When a group's transaction fails,
its items are committed one by one, so one bad item (or a database that comes back) fails only
the requests it must.
"""

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from sqlalchemy.engine import Connection

from nami_pipelines.events.model import NamiEvent, QuarantinedLine, UnsentEvent
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.writes import InsertOutcome, WriteBatch, write_batch

logger = logging.getLogger(__name__)

MAX_GROUP: Final = 512

Received = NamiEvent | UnsentEvent | QuarantinedLine
Fate = Literal["stored", "duplicate", "quarantined", "not_sent"]


class StoreUnavailable(Exception):
    """The commit failed (database down, locked, unreachable): nothing of it was written."""


class Committer(Protocol):
    async def start(self) -> None: ...
    async def commit(self, item: Received) -> Fate: ...
    async def stop(self) -> None: ...


def _batch(items: Sequence[Received]) -> WriteBatch:
    events = [item for item in items if isinstance(item, NamiEvent)]
    return WriteBatch(
        events=events,
        sources=[_source(event.app_id) for event in events],
        line_numbers=[0] * len(events),
        unsent=[item for item in items if isinstance(item, UnsentEvent)],
        quarantined=[item for item in items if isinstance(item, QuarantinedLine)],
    )


def _source(app_id: str) -> str:
    """Where webhook rows of an app are said to come from in the quarantine."""
    return f"webhook {app_id}"


def write_items(store: EventStore, items: Sequence[Received]) -> list[Fate]:
    """Commit items in one transaction; their fates in order. Raises StoreUnavailable."""
    try:
        outcome = store.write(_batch(items))
    except Exception as error:
        raise StoreUnavailable(type(error).__name__) from error
    return _fates(items, outcome)


def _fates(items: Sequence[Received], outcome: InsertOutcome) -> list[Fate]:
    event_fates = iter(outcome.fates)
    fates: list[Fate] = []
    for item in items:
        if isinstance(item, NamiEvent):
            fate = next(event_fates)
            fates.append({"loaded": "stored", "duplicate": "duplicate"}.get(fate, "quarantined"))
        else:
            fates.append("not_sent" if isinstance(item, UnsentEvent) else "quarantined")
    return fates


class PerRequestCommitter:
    """One transaction per request, run in the thread pool: what a plain receiver does."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def start(self) -> None:
        return None

    async def commit(self, item: Received) -> Fate:
        (fate,) = await asyncio.to_thread(write_items, self.store, [item])
        return fate

    async def stop(self) -> None:
        return None


@dataclass(slots=True)
class _Waiting:
    item: Received
    answer: asyncio.Future[Fate]


class _KeptConnection:
    """The writer's own connection, kept from one group to the next: checking one out of the
    pool for every group costs a round trip (its pre-ping) in each commit cycle. Any failure
    drops it, so the group after a database outage starts on a fresh, checked connection."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._connection: Connection | None = None

    def write(self, items: Sequence[Received]) -> list[Fate]:
        try:
            if self._connection is None:
                self._connection = self.store.engine.connect()
            with self._connection.begin():
                outcome = write_batch(self._connection, _batch(items))
        except Exception as error:
            self.close()
            raise StoreUnavailable(type(error).__name__) from error
        return _fates(items, outcome)

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.invalidate()
                connection.close()
            except Exception as error:  # a connection already gone has nothing left to close
                logger.debug("closing the writer's connection: %s", type(error).__name__)


class GroupCommitter:
    """A single writer that takes whatever is queued (up to `max_group`) and commits it in one
    transaction, then answers every request of it.

    Requests that arrive while a commit is in progress form the next group, so under load each
    commit carries what arrived during the one before, and a request waits at most for the
    commit in progress and its own. `max_wait` adds a pause after the first request of a group
    to gather more; it is 0 by default, because on a busy receiver a pause only lengthens
    every cycle, and on a quiet one it only adds latency.
    """

    def __init__(
        self, store: EventStore, *, max_group: int = MAX_GROUP, max_wait: float = 0.0
    ) -> None:
        self.store = store
        self.max_group = max_group
        self.max_wait = max_wait
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._connection = _KeptConnection(store)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-writer")

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._run(), name="webhook-group-commit")

    async def commit(self, item: Received) -> Fate:
        if self._writer is None or self._writer.done():
            raise StoreUnavailable("the writer is not running")
        waiting = _Waiting(item, asyncio.get_running_loop().create_future())
        await self._queue.put(waiting)
        return await waiting.answer

    async def stop(self) -> None:
        """Commits what is queued, then stops the writer."""
        if self._writer is None:
            return
        await self._queue.join()
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._thread, self._connection.close)
        self._thread.shutdown()

    async def _run(self) -> None:
        while True:
            group = await self._gather()
            try:
                await self._commit(group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _gather(self) -> list[_Waiting]:
        """The first waiting request, what queued behind it, and what arrives within
        `max_wait` after it (a sleep, not a timed `get`, so no request is taken and dropped).
        Every write runs on the writer's one thread, which owns the kept connection."""
        group = [await self._queue.get()]
        self._drain_into(group)
        if len(group) < self.max_group and self.max_wait > 0:
            await asyncio.sleep(self.max_wait)
            self._drain_into(group)
        return group

    def _drain_into(self, group: list[_Waiting]) -> None:
        while len(group) < self.max_group and not self._queue.empty():
            group.append(self._queue.get_nowait())

    async def _commit(self, group: list[_Waiting]) -> None:
        items = [waiting.item for waiting in group]
        try:
            fates = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._connection.write, items
            )
        except StoreUnavailable as error:
            if len(group) == 1:
                logger.error("webhook commit failed: %s", error)
                _answer(group[0], error)
                return
            for waiting in group:
                await self._commit([waiting])
            return
        for waiting, fate in zip(group, fates, strict=True):
            _answer(waiting, fate)


def _answer(waiting: _Waiting, outcome: Fate | Exception) -> None:
    if waiting.answer.done():  # the request went away; its commit stands all the same
        return
    if isinstance(outcome, Exception):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)
