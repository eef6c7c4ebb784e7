"""The two rate limits Amplitude applies: events per id per second, and an optional project cap."""

from collections import Counter, deque


class SlidingWindowLimit:
    """At most `limit` events per id within any `window` seconds.

    Keeps the accepted requests of the last window with their per-id counts, and a running
    total per id: each request costs a few dict operations per id, and memory follows the
    ids active in the last window, not every id ever seen. Only accepted requests count:
    a throttled request was not ingested.
    """

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self._window = window
        self._requests: deque[tuple[float, Counter[str]]] = deque()
        self._totals: dict[str, int] = {}

    def _expire(self, now: float) -> None:
        horizon = now - self._window
        while self._requests and self._requests[0][0] <= horizon:
            _, counts = self._requests.popleft()
            for ident, amount in counts.items():
                remaining = self._totals[ident] - amount
                if remaining:
                    self._totals[ident] = remaining
                else:
                    del self._totals[ident]

    def excess(self, counts: Counter[str], now: float) -> dict[str, int]:
        """The ids that these new events would take over the limit, with their events/s."""
        self._expire(now)
        totals = self._totals
        rates = ((ident, totals.get(ident, 0) + amount) for ident, amount in counts.items())
        return {ident: rate for ident, rate in rates if rate > self.limit}

    def add(self, counts: Counter[str], now: float) -> None:
        """Counts accepted events."""
        self._requests.append((now, counts))
        totals = self._totals
        for ident, amount in counts.items():
            totals[ident] = totals.get(ident, 0) + amount


class TokenBucket:
    """`rate` events per second with a one-second burst. A request larger than the burst is
    let through when the bucket is full and drives it negative, so big requests are slowed,
    never refused forever."""

    def __init__(self, rate: float, now: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._updated = now

    def take(self, amount: int, now: float) -> bool:
        self._tokens = min(self._rate, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < min(amount, self._rate):
            return False
        self._tokens -= amount
        return True
