"""Turns one raw NDJSON line into a `NamiEvent`, or says precisely why it cannot be used.

Everything the snapshot and the senders later rely on is checked here, once, so that the rest of
the pipeline can trust the table: a row that passes has a known type, a UTC timestamp, a usable id
and a payload whose state fields have the types docs/input.md describes.
"""

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from nami_pipelines.event_types import (
    DEVICE_TRANSACTION,
    JOURNEY_STATE_FLAGS,
    KNOWN_EVENT_TYPES,
    UNSENT_EVENT_TYPES,
    is_user_event,
)
from nami_pipelines.events.model import NamiEvent, UnsentEvent
from nami_pipelines.events.nami_bodies import is_native_body, record_from_body

ENVIRONMENTS = frozenset({"production", "sandbox"})
ID_MAX_LENGTH = 128
EXTERNAL_ID_MAX_LENGTH = 512
EVENT_ID_MAX_LENGTH = 64
FUTURE_TOLERANCE = timedelta(days=1)


class InvalidEvent(ValueError):
    """The reason a line goes to quarantine; its message is shown to users as is."""


class NotSentType(Exception):
    """A well-formed event of a type no destination takes; counted, never quarantined."""

    def __init__(self, event: UnsentEvent) -> None:
        super().__init__(event.event_type)
        self.event = event


def parse_timestamp(value: Any, field: str) -> datetime:
    """ISO 8601 with an explicit offset, returned in UTC; a naive time would be ambiguous."""
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{field} is missing or not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{field} is not an ISO 8601 timestamp: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        raise InvalidEvent(f"{field} has no UTC offset: {value[:64]!r}")
    return parsed.astimezone(UTC)


def _optional_text(record: dict[str, Any], field: str, max_length: int) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{field} must be a string or null, got {type(value).__name__}")
    if not value.strip():
        return None
    if len(value) > max_length:
        raise InvalidEvent(f"{field} is longer than {max_length} characters")
    return value


def _required_text(record: dict[str, Any], field: str, max_length: int) -> str:
    value = _optional_text(record, field, max_length)
    if value is None:
        raise InvalidEvent(f"{field} is missing")
    return value


def _check_user_payload(payload: dict[str, Any]) -> None:
    entitlements = payload.get("active_entitlements", [])
    if not isinstance(entitlements, list):
        raise InvalidEvent("payload.active_entitlements must be a list")
    for index, entitlement in enumerate(entitlements):
        where = f"payload.active_entitlements[{index}]"
        if not isinstance(entitlement, dict):
            raise InvalidEvent(f"{where} must be an object")
        if not isinstance(entitlement.get("entitlement_ref_id"), str):
            raise InvalidEvent(f"{where}.entitlement_ref_id must be a string")
        if not isinstance(entitlement.get("sku_ref_id"), str | None):
            raise InvalidEvent(f"{where}.sku_ref_id must be a string or null")
        if entitlement.get("expiration") is not None:
            parse_timestamp(entitlement["expiration"], f"{where}.expiration")
    state = payload.get("customer_journey_state", {})
    if not isinstance(state, dict):
        raise InvalidEvent("payload.customer_journey_state must be an object")
    for flag in JOURNEY_STATE_FLAGS:
        if not isinstance(state.get(flag, False), bool):
            raise InvalidEvent(f"payload.customer_journey_state.{flag} must be a boolean")
    devices = payload.get("devices", [])
    if not isinstance(devices, list):
        raise InvalidEvent("payload.devices must be a list")
    for index, device in enumerate(devices):
        if not isinstance(device, dict) or not isinstance(device.get("id"), str):
            raise InvalidEvent(f"payload.devices[{index}].id must be a string")
        platform = device.get("platform", {})
        if not isinstance(platform, dict) or not isinstance(platform.get("id"), str | None):
            raise InvalidEvent(f"payload.devices[{index}].platform.id must be a string")


def _is_finite_non_negative(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _check_transaction_payload(payload: dict[str, Any]) -> None:
    if not _is_finite_non_negative(payload.get("price")):
        raise InvalidEvent("payload.price must be a finite, non-negative number")
    quantity = payload.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise InvalidEvent("payload.quantity must be a positive integer")
    if not isinstance(payload.get("sku_ref_id"), str):
        raise InvalidEvent("payload.sku_ref_id must be a string")
    if not isinstance(payload.get("currency"), str):
        raise InvalidEvent("payload.currency must be a string")


def validate_event(record: Any, *, now: datetime | None = None) -> NamiEvent:
    """Check a decoded NDJSON record against docs/input.md and return the event to store."""
    if not isinstance(record, dict):
        raise InvalidEvent("line is not a JSON object")
    event_id = _required_text(record, "event_id", EVENT_ID_MAX_LENGTH)
    event_type = record.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidEvent("event_type is missing")
    if event_type in UNSENT_EVENT_TYPES:
        app_id = _required_text(record, "app_id", ID_MAX_LENGTH)
        raise NotSentType(UnsentEvent(event_id, event_type, app_id))
    if event_type not in KNOWN_EVENT_TYPES:
        raise InvalidEvent(f"unknown event_type {event_type[:128]!r}")
    occurred_at = parse_timestamp(record.get("occurred_at"), "occurred_at")
    if occurred_at > (now or datetime.now(UTC)) + FUTURE_TOLERANCE:
        raise InvalidEvent(f"occurred_at is in the future: {record['occurred_at']}")
    environment = record.get("environment")
    if environment not in ENVIRONMENTS:
        raise InvalidEvent(f"environment must be production or sandbox, got {environment!r:.64}")
    nami_user_id = _optional_text(record, "nami_user_id", ID_MAX_LENGTH)
    external_id = _optional_text(record, "external_id", EXTERNAL_ID_MAX_LENGTH)
    device_id = _optional_text(record, "device_id", ID_MAX_LENGTH)
    if is_user_event(event_type) and nami_user_id is None:
        raise InvalidEvent("user.* event has no nami_user_id")
    if nami_user_id is None and external_id is None and device_id is None:
        raise InvalidEvent("event has no usable id (nami_user_id, external_id, device_id)")
    payload = record.get("payload")
    if not isinstance(payload, dict):
        raise InvalidEvent("payload is not an object")
    if is_user_event(event_type):
        _check_user_payload(payload)
    elif event_type == DEVICE_TRANSACTION:
        _check_transaction_payload(payload)
    try:
        payload_json = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidEvent("payload contains NaN or Infinity") from None
    return NamiEvent(
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        app_id=_required_text(record, "app_id", ID_MAX_LENGTH),
        app_platform_id=_optional_text(record, "app_platform_id", ID_MAX_LENGTH),
        platform_type=_optional_text(record, "platform_type", 32),
        nami_user_id=nami_user_id,
        external_id=external_id,
        device_id=device_id,
        environment=environment,
        payload=payload,
        payload_json=payload_json,
    )


def decode_line(raw: bytes) -> Any:
    """The JSON value of one line or body (bytes, so that bad encodings are caught here)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent(f"line is not valid UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidEvent(f"invalid JSON: {error.msg} at column {error.colno}") from None


def validate_line_record(
    record: Any, *, app_id: str | None, now: datetime | None = None
) -> NamiEvent:
    """Validate a decoded line in either format, told apart per line: the envelope, or one of
    Nami's bodies (which needs the app it was received for)."""
    if is_native_body(record):
        if app_id is None:
            raise InvalidEvent("a Nami webhook body needs the app it belongs to (load --app-id)")
        record = record_from_body(record, app_id)
    return validate_event(record, now=now)


def parse_event_line(
    raw: bytes, *, now: datetime | None = None, app_id: str | None = None
) -> NamiEvent:
    """Decode and validate one NDJSON line; with `app_id`, Nami's own bodies are taken too."""
    return validate_line_record(decode_line(raw), app_id=app_id, now=now)


def parse_nami_body(raw: bytes, *, app_id: str, now: datetime | None = None) -> NamiEvent:
    """Decode and validate one webhook body received for `app_id` (always Nami's format)."""
    record = decode_line(raw)
    if not isinstance(record, dict):
        raise InvalidEvent("body is not a JSON object")
    return validate_event(record_from_body(record, app_id), now=now)


def event_id_of(raw: bytes) -> str | None:
    """The event id a rejected line carries (`event_id`, or a body's `id`), kept with it in the
    quarantine; None when the line has no readable one."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    value = record.get("event_id", record.get("id"))
    return value[:EVENT_ID_MAX_LENGTH] if isinstance(value, str) and value else None


def raw_text(raw: bytes) -> str:
    """The line as text for the quarantine, bytes that are not UTF-8 kept as escapes."""
    return raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
