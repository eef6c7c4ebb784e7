"""mParticle's per-batch rules (docs/mparticle.md): limits, schema, and what the historical
endpoint keeps.

Pure functions over parsed JSON, so the same rules serve `/v2/events` (a rejection is a 400)
and the bulk endpoints (a rejection is counted inside a 202).
"""

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

import orjson

from nami_pipelines.emulators.mparticle_schema import BatchValidator

# The strict (decimal) reading of "256 KB" and "128 KB": a sender that passes here passes there.
MAX_REQUEST_BYTES: Final = 256_000
MAX_BATCH_BYTES: Final = 128_000
MAX_BATCHES_PER_BULK: Final = 100
MAX_USER_ATTRIBUTES: Final = 100
MAX_LIST_ENTRIES: Final = 1000
MAX_LIST_ENTRY_CHARS: Final = 512
MAX_EVENT_ATTRIBUTE_CHARS: Final = 4096
HISTORICAL_MIN_AGE_MS: Final = 72 * 3600 * 1000


@dataclass(frozen=True)
class Rejection:
    """Why a batch was refused: a stable `reason` for counting and a `detail` for people."""

    reason: str
    detail: str


_DECODER: Final = json.JSONDecoder()
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, index: int) -> int:
    return _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]


def parse_bulk(body: bytes) -> list[tuple[Any, int]] | None:
    """Each batch of a bulk body with its size in bytes as sent, or None when the body is
    JSON but not an array. Raises ValueError when it is not JSON.

    Sizes come from the body itself rather than from re-serializing the parsed batches:
    that is what the sender measured. Most senders send compact JSON, whose batches are exactly
    their compact re-serialization: that is checked against the body in one comparison, and
    only a body written otherwise (spaces, escapes) is walked batch by batch.
    """
    parsed = orjson.loads(body)
    if not isinstance(parsed, list):
        return None
    compact = [orjson.dumps(batch) for batch in parsed]
    if body == b"[" + b",".join(compact) + b"]":
        return [(batch, len(text)) for batch, text in zip(parsed, compact, strict=True)]
    return _batches_as_written(body)


def _batches_as_written(body: bytes) -> list[tuple[Any, int]]:
    """The batches of a JSON array body, each with the bytes it takes in the body."""
    text = body.decode()
    index = _skip_space(text, 0)
    ascii_only = text.isascii()
    batches: list[tuple[Any, int]] = []
    index = _skip_space(text, index + 1)
    closed = text.startswith("]", index)
    while not closed:
        batch, end = _DECODER.raw_decode(text, index)
        batches.append((batch, end - index if ascii_only else len(text[index:end].encode())))
        index = _skip_space(text, end)
        closed = text.startswith("]", index)
        if not closed:
            if not text.startswith(",", index):
                raise ValueError(f"expected ',' or ']' at character {index}")
            index = _skip_space(text, index + 1)
    if _skip_space(text, index + 1) != len(text):
        raise ValueError(f"extra data after the array at character {index + 1}")
    return batches


def _shape_problem(batch: Any) -> str | None:
    """The structure the other checks rely on, checked even with schema validation off."""
    if not isinstance(batch, dict):
        return "a batch must be a JSON object"
    for name in ("user_attributes", "user_identities"):
        if not isinstance(batch.get(name), dict | None):
            return f"{name} must be an object"
    events = batch.get("events")
    if not isinstance(events, list | None):
        return "events must be an array"
    for index, event in enumerate(events or ()):
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict | None):
            return f"events[{index}] must be an object whose data is an object"
    return None


def _user_attribute_rejection(attributes: dict[str, Any]) -> Rejection | None:
    if len(attributes) > MAX_USER_ATTRIBUTES:
        return Rejection(
            "too_many_user_attributes",
            f"{len(attributes)} user attributes, limit {MAX_USER_ATTRIBUTES}",
        )
    for name, value in attributes.items():
        if not isinstance(value, list):
            continue
        if len(value) > MAX_LIST_ENTRIES:
            return Rejection(
                "user_attribute_list_too_long",
                f"user attribute {name!r} has {len(value)} entries, limit {MAX_LIST_ENTRIES}",
            )
        if any(isinstance(entry, str) and len(entry) > MAX_LIST_ENTRY_CHARS for entry in value):
            return Rejection(
                "user_attribute_entry_too_long",
                f"user attribute {name!r} has an entry over {MAX_LIST_ENTRY_CHARS} characters",
            )
    return None


def _event_attribute_rejection(events: list[dict[str, Any]]) -> Rejection | None:
    """Strings are checked first: nearly every value is one, and this runs for every event the
    emulator takes, on the cores the senders it measures share."""
    for index, event in enumerate(events):
        data = event.get("data")
        attributes = data.get("custom_attributes") if data else None
        if not isinstance(attributes, dict):
            continue
        for name, value in attributes.items():
            if isinstance(value, str):
                if len(value) > MAX_EVENT_ATTRIBUTE_CHARS:
                    return Rejection(
                        "event_attribute_value_too_long",
                        f"events[{index}] custom attribute {name!r} is over "
                        f"{MAX_EVENT_ATTRIBUTE_CHARS} characters",
                    )
            elif isinstance(value, (dict, list)):
                return Rejection(
                    "event_attribute_not_scalar",
                    f"events[{index}] custom attribute {name!r} is not a scalar",
                )
    return None


def batch_rejection(batch: Any, size: int, validator: BatchValidator | None) -> Rejection | None:
    """None when mParticle would take the batch of `size` bytes; the schema is skipped when
    `validator` is None."""
    shape = _shape_problem(batch)
    if shape is not None:
        return Rejection("malformed_batch", shape)
    if size > MAX_BATCH_BYTES:
        return Rejection("batch_too_large", f"batch is {size} bytes, limit {MAX_BATCH_BYTES}")
    rejection = _user_attribute_rejection(batch.get("user_attributes") or {})
    if rejection is None:
        rejection = _event_attribute_rejection(batch.get("events") or [])
    if rejection is None and validator is not None:
        problem = validator.problem(batch)
        if problem is not None:
            rejection = Rejection("schema", problem)
    return rejection


def batch_user(batch: dict[str, Any]) -> str | None:
    """Who a batch is about: `user_identities.customer_id`, else the mParticle id."""
    customer_id = (batch.get("user_identities") or {}).get("customer_id")
    if customer_id is not None:
        return str(customer_id)
    mpid = batch.get("mpid")
    return None if mpid is None else str(mpid)


def historical_events(
    events: list[dict[str, Any]], now_ms: int
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The events the historical endpoint keeps, and how many it drops per reason: those
    without `data.timestamp_unixtime_ms` and those less than 72 hours old."""
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for event in events:
        timestamp = (event.get("data") or {}).get("timestamp_unixtime_ms")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            dropped["missing_timestamp"] += 1
        elif now_ms - timestamp < HISTORICAL_MIN_AGE_MS:
            dropped["less_than_72_hours_old"] += 1
        else:
            kept.append(event)
    return kept, dropped
