"""Hand-written journeys for tests: events in the input format, built in a few readable lines."""

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from nami_pipelines.event_types import JOURNEY_STATE_FLAGS

APPLE_PLATFORM = "platform-apple-0001"
GOOGLE_PLATFORM = "platform-google-0001"
APP_ID = "app-production-0001"
FLAGS = JOURNEY_STATE_FLAGS


@dataclass
class EventLog:
    """Events in load order; `frame()` gives what the store would return (with `loaded_seq`)."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def user_event(
        self,
        user: str,
        event_type: str,
        at: str,
        *,
        entitlements: list[tuple[str, str, str | None]] = (),
        devices: list[tuple[str, str | None]] = (),
        external_id: str | None = None,
        platform: str = APPLE_PLATFORM,
        **flags: bool,
    ) -> dict[str, Any]:
        unknown = set(flags) - set(FLAGS)
        assert not unknown, unknown
        record = {
            "event_id": f"evt-{len(self.records) + 1:06d}",
            "event_type": event_type,
            "occurred_at": at,
            "app_id": APP_ID,
            "app_platform_id": platform,
            "platform_type": "google" if platform == GOOGLE_PLATFORM else "apple",
            "nami_user_id": user,
            "external_id": external_id,
            "device_id": None,
            "environment": "production",
            "payload": {
                "active_entitlements": [
                    {
                        "entitlement_ref_id": entitlement,
                        "sku_ref_id": sku,
                        "expiration": expiration,
                        "purchase_platform": "apple",
                    }
                    for entitlement, sku, expiration in entitlements
                ],
                "customer_journey_state": {flag: flags.get(flag, False) for flag in FLAGS},
                "devices": [
                    {"id": device, "platform": {"id": device_platform, "platform_type": "apple"}}
                    for device, device_platform in devices
                ],
                "external_ids": [],
            },
        }
        self.records.append(record)
        return record

    def device_event(
        self,
        user: str | None,
        event_type: str,
        at: str,
        *,
        device: str,
        platform: str = APPLE_PLATFORM,
        external_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        record = {
            "event_id": f"evt-{len(self.records) + 1:06d}",
            "event_type": event_type,
            "occurred_at": at,
            "app_id": APP_ID,
            "app_platform_id": platform,
            "platform_type": "google" if platform == GOOGLE_PLATFORM else "apple",
            "nami_user_id": user,
            "external_id": external_id,
            "device_id": device,
            "environment": "production",
            "payload": payload or {"id": f"imp-{len(self.records)}", "app_env": "production"},
        }
        self.records.append(record)
        return record

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.records)
        frame["payload"] = [json.dumps(payload) for payload in frame["payload"]]
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
        frame["loaded_seq"] = range(1, len(frame) + 1)
        return frame

    def ndjson(self) -> str:
        return "".join(json.dumps(record) + "\n" for record in self.records)
