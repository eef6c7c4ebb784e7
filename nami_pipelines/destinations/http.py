"""What both senders share: one retry policy, and a dispatcher that keeps several requests in
flight and schedules retries without blocking them (the requests themselves go through
`transport.py`).

Each API's client only says what one response means (`Handling`); everything about when to try
again, how many requests run at once and when to give up lives here, once.
"""

import heapq
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nami_pipelines.destinations.outcomes import OutcomeGroup, Stop
from nami_pipelines.destinations.transport import HttpResponse

Request = TypeVar("Request")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in delay."""

    max_attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)

    def honour(self, retry_after: float) -> float:
        """A server's Retry-After, capped so one header cannot park a run for hours."""
        return min(max(retry_after, 0.0), self.max_delay)


@dataclass(frozen=True, slots=True)
class Retry(Generic[Request]):
    """Send (part of) a request again: after `delay` seconds, or the policy's backoff if None."""

    request: Request
    reason: str
    delay: float | None = None
    counts_as_attempt: bool = True


@dataclass(slots=True)
class Handling(Generic[Request]):
    """What one response means for the events of the request that got it."""

    outcomes: list[OutcomeGroup] = field(default_factory=list)
    retries: list[Retry[Request]] = field(default_factory=list)
    stop: Stop | None = None
    accepted: bool = False
    # Requests whose events wait for a later run, with the reason (e.g. a daily quota spent).
    held: list[tuple[Request, str]] = field(default_factory=list)


@dataclass(slots=True)
class DispatchStats:
    """Counters a run reports (and the UI plots)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)

    def count(self, response: HttpResponse) -> None:
        self.requests += 1
        if response.status == 0:
            self.transport_errors += 1
        elif response.status == 429:
            self.throttled += 1
        elif response.status >= 500:
            self.server_errors += 1
        self.status_counts[response.status] = self.status_counts.get(response.status, 0) + 1


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Events whose retries ran out: they stay pending in the ledger, to be sent by a later run."""

    event_ids: tuple[str, ...]
    reason: str
    attempts: int


@dataclass(slots=True)
class _Work(Generic[Request]):
    request: Request
    attempts: int = 0


class Dispatcher(Generic[Request]):
    """Runs requests with at most `max_in_flight` at once; retries wait in a timer heap."""

    def __init__(
        self,
        *,
        stats: DispatchStats,
        send: Callable[[Request], HttpResponse],
        handle: Callable[[Request, HttpResponse], Handling[Request]],
        event_ids: Callable[[Request], tuple[str, ...]],
        integration: str,
        max_in_flight: int,
        policy: RetryPolicy,
        seed: int | None = None,
    ) -> None:
        self._send = send
        self._handle = handle
        self._event_ids = event_ids
        self.integration = integration
        self.max_in_flight = max_in_flight
        self.policy = policy
        self._rng = random.Random(seed)
        self.stats = stats

    def _attempt(self, work: _Work[Request]) -> tuple[_Work[Request], HttpResponse, Handling]:
        response = self._send(work.request)
        return work, response, self._handle(work.request, response)

    def run(
        self,
        requests_to_send: Iterable[Request],
        *,
        on_outcomes: Callable[[list[OutcomeGroup], int], None],
        on_unresolved: Callable[[Unresolved], None],
        on_accepted: Callable[[Request], None] | None = None,
    ) -> None:
        """Send everything; outcomes are reported as responses arrive, on this thread.

        Raises the `IntegrationStopped` a response called for (credentials refused, wrong
        destination) after in-flight requests finish; the stopping request and those not yet
        sent are then reported as unresolved, never as sent or rejected.
        """
        fresh: Iterator[Request] = iter(requests_to_send)
        delayed: list[tuple[float, int, _Work[Request]]] = []
        tiebreak = itertools.count()
        in_flight: set[Future] = set()
        stopped: Stop | None = None
        with ThreadPoolExecutor(
            max_workers=self.max_in_flight, thread_name_prefix=f"send-{self.integration}"
        ) as pool:
            while True:
                now = time.monotonic()
                while stopped is None and len(in_flight) < self.max_in_flight:
                    if delayed and delayed[0][0] <= now:
                        work = heapq.heappop(delayed)[2]
                    else:
                        request = next(fresh, None)
                        if request is None:
                            break
                        work = _Work(request)
                    in_flight.add(pool.submit(self._attempt, work))
                if not in_flight and (stopped is not None or not delayed):
                    break
                timeout = max(0.0, delayed[0][0] - now) if delayed else None
                if not in_flight:
                    # Everything waits for its retry time: sleep until the first is due
                    # (`wait` on no futures returns at once, and the loop would spin).
                    time.sleep(timeout or 0.0)
                    continue
                done, in_flight = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    work, response, handling = future.result()
                    self.stats.count(response)
                    work.attempts += 1
                    if handling.stop is not None:
                        stopped = stopped or handling.stop
                        on_unresolved(
                            Unresolved(
                                self._event_ids(work.request), handling.stop.reason, work.attempts
                            )
                        )
                        continue
                    if handling.outcomes:
                        on_outcomes(handling.outcomes, work.attempts)
                    if handling.accepted and on_accepted is not None:
                        on_accepted(work.request)
                    for held, reason in handling.held:
                        on_unresolved(Unresolved(self._event_ids(held), reason, work.attempts))
                    for retry in handling.retries:
                        self._schedule(retry, work, delayed, tiebreak, on_unresolved)
            if stopped is not None:
                leftovers = [entry[2].request for entry in delayed] + list(fresh)
                for request in leftovers:
                    on_unresolved(Unresolved(self._event_ids(request), stopped.reason, 0))
                raise stopped.error(f"integration '{self.integration}': {stopped.reason}")

    def _schedule(
        self,
        retry: Retry[Request],
        work: _Work[Request],
        delayed: list[tuple[float, int, _Work[Request]]],
        tiebreak: Iterator[int],
        on_unresolved: Callable[[Unresolved], None],
    ) -> None:
        attempts = work.attempts if retry.counts_as_attempt else max(work.attempts - 1, 0)
        if attempts >= self.policy.max_attempts:
            on_unresolved(
                Unresolved(
                    self._event_ids(retry.request),
                    f"gave up after {attempts} attempts: {retry.reason}",
                    attempts,
                )
            )
            return
        self.stats.retries += 1
        delay = (
            self.policy.backoff(max(attempts, 1), self._rng) if retry.delay is None else retry.delay
        )
        heapq.heappush(
            delayed,
            (time.monotonic() + delay, next(tiebreak), _Work(retry.request, attempts)),
        )


def response_summary(response: HttpResponse, limit: int = 500) -> str:
    """A response as a short reason for the ledger (status and the start of the body)."""
    if response.error:
        return f"transport error: {response.error}"
    body = " ".join(response.body.split())
    return f"HTTP {response.status}: {body[:limit]}" if body else f"HTTP {response.status}"


def parse_json(text: str) -> Any:
    """A body as JSON, or None when it is not (some 5xx come from proxies as HTML)."""
    try:
        return json.loads(text)
    except ValueError:
        return None
