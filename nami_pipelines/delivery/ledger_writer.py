"""Ledger writes on a thread of their own, so recording one request's outcomes overlaps with
mapping and sending the next.

The database drivers release the GIL while a statement runs, so on a machine with two cores the
ledger's writes cost the send loop almost nothing. Writes run one at a time, in the order they
were submitted; `flush` waits for them (and raises the first that failed) where the send loop
must read what was written.
"""

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self


class LedgerWriter:
    """An ordered queue of ledger writes run by one background thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._pending: list[Future[None]] = []

    def submit(self, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Queue `write(*args, **kwargs)` after every write submitted before it."""
        self._pending.append(self._pool.submit(write, *args, **kwargs))

    def flush(self) -> None:
        """Wait until every queued write is done; re-raise the first failure."""
        pending, self._pending = self._pending, []
        errors = [error for future in pending if (error := future.exception()) is not None]
        if errors:
            raise errors[0]

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
        try:
            if error is None:
                self.flush()
            else:
                for future in self._pending:
                    future.exception()
        finally:
            self._pool.shutdown(wait=True)
