"""Nami's own event bodies (its webhooks) mapped to `nami_events` rows: the one mapping that the
webhook receiver, `load --app-id` and `generate --format nami` share (docs/input.md).

A body carries the user's state at its top level, with `id`, `created_date` and `user_id` in
place of the envelope's columns. The body is stored as received as the row's `payload`, so the
attribute rules read `active_entitlements`, `customer_journey_state` and `devices` from the same
place for both formats: the top level of the payload.
"""

from typing import Any, Final

from nami_pipelines.event_types import is_user_event

# The all-zero UUID is what Nami's docs show for ids; as an external id it names nobody.
ALL_ZERO_UUID: Final = "00000000-0000-0000-0000-000000000000"
EXTERNAL_ID_KEY: Final = "external_id"
PRODUCTION: Final = "production"
SANDBOX: Final = "sandbox"


def is_native_body(record: Any) -> bool:
    """Whether a decoded line is one of Nami's bodies rather than the project's envelope (which
    always has `event_id` and a `payload` object)."""
    return isinstance(record, dict) and "event_id" not in record and "id" in record


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _external_id(body: dict[str, Any]) -> str | None:
    """The `external_ids[]` entry keyed `external_id` (never another key such as
    `original_transaction_id`), else a top-level `external_id`; the all-zero UUID counts as none."""
    entries = body.get("external_ids")
    candidates = [
        entry.get("value")
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, dict) and entry.get("key") == EXTERNAL_ID_KEY
    ]
    candidates.append(body.get("external_id"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip() and candidate != ALL_ZERO_UUID:
            return candidate
    return None


def _devices(body: dict[str, Any]) -> list[dict[str, Any]]:
    devices = body.get("devices")
    return [d for d in devices if isinstance(d, dict)] if isinstance(devices, list) else []


def _platform(device: dict[str, Any] | None) -> dict[str, Any]:
    platform = (device or {}).get("platform")
    return platform if isinstance(platform, dict) else {}


def _event_device(body: dict[str, Any]) -> dict[str, Any] | None:
    """The device the event happened on: a `device` object, else the `devices[]` entry whose id
    is the event's `device_id`."""
    device = body.get("device")
    if isinstance(device, dict):
        return device
    device_id = _text(body.get("device_id"))
    return next((d for d in _devices(body) if d.get("id") == device_id), None)


def _device_id(body: dict[str, Any], device: dict[str, Any] | None) -> str | None:
    return _text(body.get("device_id")) or _text((device or {}).get("id"))


def _app_platform_id(body: dict[str, Any], device: dict[str, Any] | None) -> Any:
    if body.get("app_platform_id") is not None:
        return body["app_platform_id"]
    if _platform(device).get("id") is not None:
        return _platform(device)["id"]
    devices = _devices(body)
    return _platform(devices[0]).get("id") if len(devices) == 1 else None


def _environment(body: dict[str, Any]) -> str:
    """`sandbox` when the body says so anywhere Nami puts it, else `production`."""
    if body.get("environment") == SANDBOX or body.get("purchase_env") == SANDBOX:
        return SANDBOX
    app_env = body.get("app_env")
    return SANDBOX if app_env is not None and app_env != PRODUCTION else PRODUCTION


def record_from_body(body: dict[str, Any], app_id: str) -> dict[str, Any]:
    """The envelope record (the columns of docs/input.md) for a body received for `app_id`; it
    is then validated exactly as an envelope line is."""
    device = _event_device(body)
    return {
        "event_id": body.get("id"),
        "event_type": body.get("event_type"),
        "occurred_at": body.get("created_date"),
        "app_id": app_id,
        "app_platform_id": _app_platform_id(body, device),
        "platform_type": body.get("event_platform") or _platform(device).get("platform_type"),
        "nami_user_id": body.get("user_id"),
        "external_id": _external_id(body),
        "device_id": _device_id(body, device),
        "environment": _environment(body),
        "payload": body,
    }


def body_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """The body Nami would send for an envelope record (for `generate --format nami`); mapping
    it back with `record_from_body` gives the record's columns again."""
    body: dict[str, Any] = {
        **record["payload"],
        "id": record["event_id"],
        "event_type": record["event_type"],
        "created_date": record["occurred_at"],
        "user_id": record["nami_user_id"],
        "event_platform": record["platform_type"],
        "app_platform_id": record["app_platform_id"],
        "environment": record["environment"],
    }
    if record.get("device_id") is not None:
        body["device_id"] = record["device_id"]
    if is_user_event(record["event_type"]) or record.get("external_id") is not None:
        others = [
            entry for entry in body.get("external_ids") or () if entry.get("key") != EXTERNAL_ID_KEY
        ]
        if record.get("external_id") is not None:
            others.append({"key": EXTERNAL_ID_KEY, "type": "uuid", "value": record["external_id"]})
        body["external_ids"] = others
    return body
