"""Sending at the rate a project takes, once it has said what that is.

A project-wide 429 says the project's events-per-second limit (`eps_threshold`). Parking the
throttled events for a fixed 30 s and then sending everything at once again wastes most of the
allowance and invites the next 429; a token bucket that spaces requests at just under the stated
rate keeps the project busy and the 429s rare.
"""

import threading
import time
from collections.abc import Callable
from typing import Final

# Under the stated rate, so that clock and network jitter do not tip a request over it.
PACE_SHARE: Final = 0.95
# Each further 429 while pacing slows down by this much, to no less than `SLOWEST_SHARE` of the
# stated rate: the project takes less than it says, but not much less.
SLOWDOWN: Final = 0.97
SLOWEST_SHARE: Final = 0.5
# A process sharing a project speeds up by this share of the stated rate per accepted request,
# up to `PACE_SHARE` of the whole: the others may have finished. Its next 429 puts it back at
# its share.
RAMP: Final = 0.02


class SendPacer:
    """A token bucket over events, shared by the threads of one client; open until a project
    states its rate (in a 429, or in the configuration). Like the APIs' own buckets, a request larger than a second's allowance
    goes out when the bucket is full and leaves it in debt, so big requests are slowed, never
    stuck."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        share: float = 1.0,
        stated_rate: float | None = None,
    ) -> None:
        self._share = share  # of a project's rate, when several processes send to it at once
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._turns = threading.local()  # when this thread's last request went out
        self._rate: float | None = None
        self._tokens = 0.0
        self._updated = 0.0
        self._adjusted = float("-inf")
        self._stated: float | None = None
        if stated_rate is not None:
            # A rate the configuration states (a Starter project's 1,000 events/s) paces from
            # the first request, with an empty bucket: no burst over the rate at the start.
            self._stated = stated_rate
            self._rate = max(stated_rate * share * PACE_SHARE, 1.0)
            self._updated = clock()

    @property
    def rate(self) -> float | None:
        """Events per second sent at most, or None while unlimited."""
        return self._rate

    def throttled(self, stated_rate: float, events: int) -> None:
        """A project-wide 429, stating `stated_rate`, for the `events` this thread sent last.

        Pace under the stated rate, starting in debt by the refused request: the project's own
        bucket may still owe for a large request it let through. A 429 for a request sent at
        the present pace means that pace is too fast: slow down a little more. One sent before
        the pace was set says nothing new (requests in flight when the first 429 came back get
        theirs too).
        """
        with self._lock:
            sent = getattr(self._turns, "sent", None)
            if self._rate is not None and (sent is None or sent <= self._adjusted):
                return
            ours = stated_rate * self._share
            target = ours * PACE_SHARE
            if self._rate is not None:
                target = min(target, self._rate * SLOWDOWN)
            self._rate = max(target, ours * SLOWEST_SHARE, 1.0)
            self._stated = stated_rate
            self._tokens = min(self._tokens, 0.0) - events
            self._updated = self._adjusted = self._clock()

    def accepted(self) -> None:
        """The project took a paced request. A process with a share of the rate takes a little
        more each time, so the rate is not left unused when the others finish."""
        with self._lock:
            if self._rate is None or self._stated is None or self._share >= 1.0:
                return
            whole = self._stated * PACE_SHARE
            self._rate = min(whole, self._rate + self._stated * RAMP)

    def wait_turn(self, events: int) -> None:
        """Block until `events` may go out, then spend them. Waiting holds the lock, so
        requests leave in turn rather than all at once when the bucket refills."""
        with self._lock:
            rate = self._rate
            if rate is not None:
                needed = min(float(events), rate)
                self._refill(rate)
                if self._tokens < needed:
                    self._sleep((needed - self._tokens) / rate)
                    self._refill(rate)
                self._tokens -= events
            self._turns.sent = self._clock()

    def _refill(self, rate: float) -> None:
        now = self._clock()
        self._tokens = min(rate, self._tokens + (now - self._updated) * rate)
        self._updated = now
