"""Ledger writes on a thread of their own, so recording one request's outcomes overlaps with
mapping and sending the next; and committed in groups, so a busy run pays one commit for many
requests instead of one each.

The database drivers release the GIL while a statement runs, so on a machine with two cores the
ledger's writes cost the send loop almost nothing. Writes run in the order they were submitted:
the thread takes every write queued since its last commit and runs them in one transaction (when
the send loop is quiet that is one write; when it is busy, the requests answered during the last
commit). `flush` waits for them (and raises the first failure) where the send loop must read
what was written.
"""

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine

from nami_pipelines.delivery.ledger_statements import writing

# A write: a ledger method that takes the group's transaction as `connection`.
Write = Callable[..., None]
_STOP = object()
# A bound on one transaction: the other workers' claims wait for its commit.
MAX_WRITES_PER_COMMIT = 100


class LedgerWriter:
    """An ordered queue of ledger writes, committed in groups by one background thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._unfinished = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Write, *args: Any, **kwargs: Any) -> None:
        """Queue `write(*args, connection=..., **kwargs)` after every write submitted before."""
        with self._idle:
            self._unfinished += 1
        self._queue.put((write, args, kwargs))

    def flush(self) -> None:
        """Wait until every queued write is committed; re-raise the first failure."""
        with self._idle:
            self._idle.wait_for(lambda: self._unfinished == 0)
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_WRITES_PER_COMMIT:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in group)
            writes = [item for item in group if item is not _STOP]
            if writes:
                self._commit(writes)
            if stop:
                return

    def _commit(self, writes: list[tuple[Write, tuple, dict]]) -> None:
        failure: BaseException | None = None
        try:
            with writing(self._engine) as connection:
                for write, args, kwargs in writes:
                    write(*args, connection=connection, **kwargs)
        except Exception as error:
            failure = error
        with self._idle:
            if failure is not None and self._error is None:
                self._error = failure
            self._unfinished -= len(writes)
            self._idle.notify_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Finish every queued write, also when the send loop failed (outcomes already known
        must reach the ledger); a write's own failure is raised unless one is on its way."""
        self._queue.put(_STOP)
        self._thread.join()
        if error is None:
            self.flush()
