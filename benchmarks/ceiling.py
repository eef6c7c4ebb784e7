"""The ceiling: a minimal hand-written sender of the very payloads our mapping builds.

Payload dicts come from our own mapping before the clock starts; timed is only what any sender
must do: cut them into requests within the API's limits, `json.dumps` each request and POST it
on one keep-alive `requests.Session`, from a small thread pool the size of our `max_in_flight`
(so it overlaps waiting for the emulator the same way ours does). No ledger, no bookkeeping and
no retries: a failed request is counted, not resent, so the verification shows it.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from nami_pipelines.api_limits import (
    AMPLITUDE_MAX_EVENTS_PER_REQUEST,
    AMPLITUDE_MAX_REQUEST_BYTES,
    MPARTICLE_MAX_BATCHES_PER_REQUEST,
    MPARTICLE_MAX_REQUEST_BYTES,
)

_COMPACT = (",", ":")


@dataclass(slots=True)
class CeilingRun:
    events: int = 0
    acknowledged: int = 0
    failed: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _items_per_request(items: Sequence[Any], limit: int, max_bytes: int) -> int:
    """How many items to put in a request, from their average size (a request that still comes
    out too large is halved, see `_bodies`)."""
    sample = items[:500]
    if not sample:
        return limit
    average = sum(len(json.dumps(item, separators=_COMPACT)) for item in sample) / len(sample)
    return max(1, min(limit, int(0.9 * max_bytes / (average + 1))))


def _requests(
    items: Sequence[Any], count: int, max_bytes: int, wrap: Callable[[Sequence[Any]], Any]
) -> Iterator[tuple[bytes, Sequence[Any]]]:
    """Request bodies with the items in each: `count` items at a time, halved when too big."""
    for start in range(0, len(items), count):
        yield from _fitting(items[start : start + count], max_bytes, wrap)


def _fitting(
    items: Sequence[Any], max_bytes: int, wrap: Callable[[Sequence[Any]], Any]
) -> Iterator[tuple[bytes, Sequence[Any]]]:
    body = json.dumps(wrap(items), separators=_COMPACT).encode()
    if len(body) <= max_bytes or len(items) == 1:
        yield body, items
        return
    half = len(items) // 2
    yield from _fitting(items[:half], max_bytes, wrap)
    yield from _fitting(items[half:], max_bytes, wrap)


def _send_all(
    bodies: Iterator[tuple[bytes, Sequence[Any]]],
    post: Callable[[requests.Session, bytes], requests.Response],
    *,
    workers: int,
    weight: Callable[[Sequence[Any]], int],
    run: CeilingRun,
) -> None:
    """POSTs every body from `workers` threads on one session; at most twice as many requests
    are built ahead as can be in flight, so memory stays bounded."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=workers, max_retries=0)
    session.mount("http://", adapter)

    def send(body: bytes, items: Sequence[Any]) -> tuple[int, int]:
        return post(session, body).status_code, weight(items)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for body, items in bodies:
            pending.append(pool.submit(send, body, items))
            if len(pending) >= workers * 2:
                _settle(pending.pop(0).result(), run)
        for future in pending:
            _settle(future.result(), run)
    session.close()


def _settle(result: tuple[int, int], run: CeilingRun) -> None:
    status, events = result
    run.requests += 1
    run.statuses[status] = run.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        run.acknowledged += events
    else:
        run.failed += events


def send_amplitude_ceiling(
    events: Sequence[dict[str, Any]], *, url: str, api_key: str, workers: int
) -> CeilingRun:
    """Event dicts to `/2/httpapi`, up to 2,000 events and 1 MB per request."""
    run = CeilingRun(events=len(events))
    count = _items_per_request(
        events, AMPLITUDE_MAX_EVENTS_PER_REQUEST, AMPLITUDE_MAX_REQUEST_BYTES
    )
    run.settings = {"workers": workers, "events_per_request": count, "session": "one"}
    headers = {"Content-Type": "application/json"}

    def post(session: requests.Session, body: bytes) -> requests.Response:
        return session.post(url, data=body, headers=headers, timeout=60)

    bodies = _requests(
        events,
        count,
        AMPLITUDE_MAX_REQUEST_BYTES,
        lambda chunk: {"api_key": api_key, "events": chunk},
    )
    _send_all(bodies, post, workers=workers, weight=len, run=run)
    return run


def send_mparticle_ceiling(
    batches: Sequence[dict[str, Any]], *, url: str, auth: tuple[str, str], workers: int
) -> CeilingRun:
    """Batch dicts to `/v2/bulkevents`, up to 100 batches and 256 KB per request."""
    run = CeilingRun(events=sum(len(batch.get("events") or ()) for batch in batches))
    count = _items_per_request(
        batches, MPARTICLE_MAX_BATCHES_PER_REQUEST, MPARTICLE_MAX_REQUEST_BYTES
    )
    run.settings = {"workers": workers, "batches_per_request": count, "session": "one"}
    headers = {"Content-Type": "application/json"}

    def post(session: requests.Session, body: bytes) -> requests.Response:
        return session.post(url, data=body, headers=headers, auth=auth, timeout=60)

    def events_in(chunk: Sequence[dict[str, Any]]) -> int:
        return sum(len(batch.get("events") or ()) for batch in chunk)

    bodies = _requests(batches, count, MPARTICLE_MAX_REQUEST_BYTES, list)
    _send_all(bodies, post, workers=workers, weight=events_in, run=run)
    return run
