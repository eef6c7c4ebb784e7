"""Request bodies for the emulator tests, shaped like what the senders produce."""

import time
import uuid
from typing import Any

DAY_MS = 24 * 3600 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def mparticle_event(timestamp_ms: int | None = None, **attributes: Any) -> dict[str, Any]:
    """A Nami `user.subscription.renewed` as a custom event, with a fresh source_message_id."""
    data: dict[str, Any] = {
        "event_name": "renewed",
        "custom_event_type": "transaction",
        "source_message_id": str(uuid.uuid4()),
        "custom_attributes": {
            "namiml_event_category": "user",
            "namiml_event_subcategory1": "subscription",
            "event_platform": "apple",
            **attributes,
        },
    }
    if timestamp_ms is not None:
        data["timestamp_unixtime_ms"] = timestamp_ms
    return {"event_type": "custom_event", "data": data}


def mparticle_batch(
    customer_id: str = "external-1",
    events: list[dict[str, Any]] | None = None,
    user_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "source_request_id": str(uuid.uuid4()),
        "environment": "production",
        "user_identities": {"customer_id": customer_id},
        "events": [mparticle_event(now_ms())] if events is None else events,
    }
    if user_attributes is not None:
        batch["user_attributes"] = user_attributes
    return batch


def amplitude_event(user_id: str = "external-1", **fields: Any) -> dict[str, Any]:
    """A Nami event as the Amplitude sender maps it, with a fresh insert_id."""
    return {
        "user_id": user_id,
        "device_id": str(uuid.uuid4()),
        "event_type": "user.subscription.renewed",
        "time": now_ms(),
        "insert_id": str(uuid.uuid4()),
        "platform": "apple",
        "event_properties": {"namiml_event_category": "user"},
        **fields,
    }
