"""The one batching routine per API: mapped batches or events into request bodies within the
APIs' limits (docs/mparticle.md, docs/amplitude.md).

Each batch or event is serialized once, here, as its request is filled; a request body is
those bytes joined, so packing is linear and a request's size is known exactly before it is
sent. What cannot fit even alone comes out of the same stream as a `Skipped` with the reason, so
a sender cannot overlook it. An Amplitude item is the event's body dict itself (its `insert_id`
is the Nami event id); an mParticle item is a batch.
"""

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from nami_pipelines.api_limits import (
    AMPLITUDE_MAX_EVENTS_PER_REQUEST,
    AMPLITUDE_MAX_REQUEST_BYTES,
    MPARTICLE_MAX_BATCH_BYTES,
    MPARTICLE_MAX_BATCHES_PER_REQUEST,
    MPARTICLE_MAX_REQUEST_BYTES,
)
from nami_pipelines.destinations.limits import encode
from nami_pipelines.destinations.mparticle_mapping import MParticleBatch
from nami_pipelines.destinations.outgoing import Skipped

Item = TypeVar("Item", MParticleBatch, dict[str, Any])


def _batch_event_ids(batches: Sequence[MParticleBatch]) -> tuple[str, ...]:
    return tuple(event_id for batch in batches for event_id in batch.event_ids)


def _amplitude_event_ids(events: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(event["insert_id"] for event in events)


@dataclass(frozen=True, slots=True, repr=False)
class _Envelope:
    """What surrounds the joined items, and how the Nami event ids are read off the items. May
    hold the Amplitude API key: never shown."""

    prefix: bytes
    suffix: bytes
    event_ids: Callable[[Sequence[Any]], tuple[str, ...]]

    @property
    def size(self) -> int:
        return len(self.prefix) + len(self.suffix)


@dataclass(frozen=True, slots=True, repr=False)
class PackedRequest(Generic[Item]):
    """One request body, serialized, with the batches or events in it (in body order) so a
    sender can record each one's outcome or split the request on a 413.

    The repr names counts and size only: an Amplitude body holds the API key.
    """

    items: tuple[Item, ...]
    parts: tuple[bytes, ...]  # each item's serialized form, in order
    envelope: _Envelope
    body: bytes
    event_ids: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_ids", self.envelope.event_ids(self.items))

    @property
    def batch_count(self) -> int:
        """Batches (mParticle) or events (Amplitude) in the request."""
        return len(self.items)

    def __repr__(self) -> str:
        return (
            f"PackedRequest(batch_count={len(self.items)}, events={len(self.event_ids)}, "
            f"bytes={len(self.body)})"
        )


_BULK_ENVELOPE: Final = _Envelope(b"[", b"]", _batch_event_ids)


def pack_mparticle_bulk(
    batches: Iterable[MParticleBatch],
    max_batches: int = MPARTICLE_MAX_BATCHES_PER_REQUEST,
    max_request_bytes: int = MPARTICLE_MAX_REQUEST_BYTES,
    max_batch_bytes: int = MPARTICLE_MAX_BATCH_BYTES,
) -> Iterator[PackedRequest[MParticleBatch] | Skipped]:
    """`/v2/bulkevents` bodies (JSON arrays of batches) in input order. A batch over
    `max_batch_bytes` is cut into several (see `_split_batch`). Lazy: each step encodes the
    batches of one request."""
    if max_batch_bytes + _BULK_ENVELOPE.size > max_request_bytes:
        raise ValueError("max_batch_bytes leaves no room for one batch in max_request_bytes")
    return fill_requests(
        _mparticle_parts(batches, max_batch_bytes), _BULK_ENVELOPE, max_batches, max_request_bytes
    )


def pack_amplitude_requests(
    events: Iterable[dict[str, Any]],
    api_key: str,
    *,
    options: dict[str, Any] | None,
    max_events: int = AMPLITUDE_MAX_EVENTS_PER_REQUEST,
    max_request_bytes: int = AMPLITUDE_MAX_REQUEST_BYTES,
) -> Iterator[PackedRequest[dict[str, Any]] | Skipped]:
    """`/2/httpapi` bodies `{"api_key", "events", "options"?}` in input order; an event too
    large for a request of its own is skipped. Lazy: each step encodes the events of one
    request."""
    options_part = b"" if options is None else b',"options":' + encode(options)
    envelope = _Envelope(
        b'{"api_key":' + encode(api_key) + b',"events":[',
        b"]" + options_part + b"}",
        _amplitude_event_ids,
    )
    room = max_request_bytes - envelope.size
    if room <= 0:
        raise ValueError("max_request_bytes leaves no room for an event")
    return fill_requests(_amplitude_parts(events, room), envelope, max_events, max_request_bytes)


def split_mparticle_request(
    request: PackedRequest[MParticleBatch],
) -> tuple[PackedRequest[MParticleBatch], PackedRequest[MParticleBatch]]:
    """Two requests with half the batches each, for a 413."""
    return _split(request)


def split_amplitude_request(
    request: PackedRequest[dict[str, Any]],
) -> tuple[PackedRequest[dict[str, Any]], PackedRequest[dict[str, Any]]]:
    """Two requests with half the events each, for a 413 (docs/amplitude.md)."""
    return _split(request)


def take_items(request: PackedRequest[Item], positions: Iterable[int]) -> PackedRequest[Item]:
    """The same request with only the items at `positions`: to resend the part of a request an
    API did not refuse, without serializing anything again."""
    chosen = sorted(set(positions))
    return _request(
        [request.items[i] for i in chosen], [request.parts[i] for i in chosen], request.envelope
    )


def _split(request: PackedRequest[Item]) -> tuple[PackedRequest[Item], PackedRequest[Item]]:
    count = len(request.items)
    if count < 2:
        raise ValueError("a request with a single batch or event cannot be split")
    middle = count // 2
    return (
        _request(request.items[:middle], request.parts[:middle], request.envelope),
        _request(request.items[middle:], request.parts[middle:], request.envelope),
    )


def _request(
    items: Sequence[Item], parts: Sequence[bytes], envelope: _Envelope
) -> PackedRequest[Item]:
    body = envelope.prefix + b",".join(parts) + envelope.suffix
    return PackedRequest(tuple(items), tuple(parts), envelope, body)


def fill_requests(
    serialized: Iterable[tuple[Item, bytes] | Skipped],
    envelope: _Envelope,
    max_items: int,
    max_bytes: int,
) -> Iterator[PackedRequest[Item] | Skipped]:
    """Fill each request until the next item would break a limit; `serialized` only holds
    items that fit a request of their own. Both APIs' packing runs here, one request per step
    (the benchmark times encoding by these steps)."""
    items: list[Item] = []
    parts: list[bytes] = []
    size = envelope.size
    for entry in serialized:
        if isinstance(entry, Skipped):
            yield entry
            continue
        item, part = entry
        if items and (len(items) == max_items or size + 1 + len(part) > max_bytes):
            yield _request(items, parts, envelope)
            items, parts, size = [], [], envelope.size
        size += len(part) + (1 if items else 0)  # the comma before all but the first
        items.append(item)
        parts.append(part)
    if items:
        yield _request(items, parts, envelope)


def _amplitude_parts(
    events: Iterable[dict[str, Any]], room: int
) -> Iterator[tuple[dict[str, Any], bytes] | Skipped]:
    for event in events:
        part = encode(event)
        if len(part) > room:
            yield Skipped(
                event["insert_id"],
                None,
                f"event is {len(part)} bytes, more than fits in one Amplitude request",
            )
        else:
            yield event, part


def _mparticle_parts(
    batches: Iterable[MParticleBatch], max_batch_bytes: int
) -> Iterator[tuple[MParticleBatch, bytes] | Skipped]:
    for batch in batches:
        part = encode(batch.body)
        if len(part) <= max_batch_bytes:
            yield batch, part
        else:
            yield from _split_batch(batch, max_batch_bytes)


def _split_batch(
    batch: MParticleBatch, limit: int
) -> Iterator[tuple[MParticleBatch, bytes] | Skipped]:
    """A batch over `limit` as several batches of the same user, in event order; only the last
    one carries `user_attributes` (they are as of its last event). Each part gets its own
    `source_request_id`, derived from the batch's and its events, so retries reuse it."""
    splitter = _BatchSplitter(batch, limit)
    if not splitter.events:
        yield Skipped(
            None,
            batch.nami_user_id,
            f"attribute update is {len(encode(batch.body))} bytes, over mParticle's "
            f"{limit}-byte batch limit",
        )
        return
    start = splitter.tail_start()
    yield from splitter.chunks(range(start), with_attributes=False)
    if splitter.attributes is not None:
        yield splitter.last(range(start, len(splitter.events)))


class _BatchSplitter:
    """The pieces of one oversized batch, each serialized once, and the bytes of its parts
    assembled from them."""

    def __init__(self, batch: MParticleBatch, limit: int) -> None:
        body = batch.body
        self.batch = batch
        self.limit = limit
        self.events: list[dict[str, Any]] = body.get("events") or []
        self.attributes: dict[str, Any] | None = body.get("user_attributes")
        self.head = {
            key: value
            for key, value in body.items()
            if key not in ("events", "user_attributes", "source_request_id")
        }
        self.head_inner = encode(self.head)[1:-1]
        self.attributes_part = (
            b"" if self.attributes is None else b',"user_attributes":' + encode(self.attributes)
        )
        self.event_parts = [encode(event) for event in self.events]
        self.parent_id = uuid.UUID(body["source_request_id"])
        # Bytes of a part besides its events: braces, request id, head, `"events":[]`.
        self.fixed = len(self._assemble("0" * 36, b"", []))

    def tail_start(self) -> int:
        """Where the last part starts: as many final events as fit with the attributes (all
        the events go in the leading parts when there are no attributes)."""
        count = len(self.events)
        if self.attributes is None:
            return count
        room = self.limit - self.fixed - len(self.attributes_part)
        start, used = count, -1
        while start > 0 and used + 1 + len(self.event_parts[start - 1]) <= room:
            used += 1 + len(self.event_parts[start - 1])
            start -= 1
        return start

    def chunks(
        self, indexes: range, *, with_attributes: bool
    ) -> Iterator[tuple[MParticleBatch, bytes] | Skipped]:
        """Greedy parts over `indexes`; an event too large for a part of its own is skipped."""
        room = self.limit - self.fixed
        chunk: list[int] = []
        used = -1
        for index in indexes:
            size = len(self.event_parts[index])
            if size > room:
                yield self._too_large(index)
                continue
            if chunk and used + 1 + size > room:
                yield self._part(chunk, with_attributes=with_attributes)
                chunk, used = [], -1
            chunk.append(index)
            used += 1 + size
        if chunk:
            yield self._part(chunk, with_attributes=with_attributes)

    def last(self, indexes: range) -> tuple[MParticleBatch, bytes] | Skipped:
        """The final part, with the attributes; when not even the last event fits with them,
        all the events went in the leading parts and the attributes follow on their own."""
        if indexes:
            return self._part(list(indexes), with_attributes=True)
        return self._attributes_only()

    def _too_large(self, index: int) -> Skipped:
        return Skipped(
            self.batch.event_ids[index],
            self.batch.nami_user_id,
            f"event is {len(self.event_parts[index]) + self.fixed} bytes in a batch of its own, "
            f"over mParticle's {self.limit}-byte batch limit",
        )

    def _part(self, indexes: list[int], *, with_attributes: bool) -> tuple[MParticleBatch, bytes]:
        event_ids = tuple(self.batch.event_ids[index] for index in indexes)
        request_id = str(uuid.uuid5(self.parent_id, ",".join(sorted(event_ids))))
        body: dict[str, Any] = {"source_request_id": request_id, **self.head}
        if with_attributes:
            body["user_attributes"] = self.attributes
        body["events"] = [self.events[index] for index in indexes]
        data = self._assemble(
            request_id,
            self.attributes_part if with_attributes else b"",
            [self.event_parts[index] for index in indexes],
        )
        return MParticleBatch(body, event_ids, self.batch.nami_user_id), data

    def _attributes_only(self) -> tuple[MParticleBatch, bytes] | Skipped:
        request_id = str(uuid.uuid5(self.parent_id, "attributes"))
        data = self._assemble(request_id, self.attributes_part, None)
        if len(data) > self.limit:
            return Skipped(
                None,
                self.batch.nami_user_id,
                f"user_attributes are {len(data)} bytes in a batch of their own, over "
                f"mParticle's {self.limit}-byte batch limit",
            )
        body = {"source_request_id": request_id, **self.head, "user_attributes": self.attributes}
        return MParticleBatch(body, (), self.batch.nami_user_id), data

    def _assemble(
        self, request_id: str, attributes_part: bytes, event_parts: list[bytes] | None
    ) -> bytes:
        head = b"," + self.head_inner if self.head_inner else b""
        events = b"" if event_parts is None else b',"events":[' + b",".join(event_parts) + b"]"
        return (
            b'{"source_request_id":"'
            + request_id.encode("ascii")
            + b'"'
            + head
            + attributes_part
            + events
            + b"}"
        )
