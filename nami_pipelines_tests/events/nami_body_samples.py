"""Nami webhook bodies in the shape Nami's docs show: the user's state at the top level,
`external_ids[]`, `devices[].platform`, and `id` / `event_type` / `created_date` / `user_id`."""

import copy
import json
from pathlib import Path
from typing import Any

APP_ID = "app-webhooks-0001"
USER_ID = "c3e2a1f0-7b6d-4c5e-8f9a-0b1c2d3e4f5a"
EXTERNAL_ID = "5d9a7c1e-3b2f-4e8a-9c6d-1a2b3c4d5e6f"
DEVICE_ID = "1f0b6c52-8f4e-4a57-9d1e-2b9f3c7a5e10"
PLATFORM_ID = "8d0f2b8e-1c1f-4a53-9d43-3f0a5b1c2e11"
ZERO = "00000000-0000-0000-0000-000000000000"

_RENEWED: dict[str, Any] = {
    "active_entitlements": [
        {
            "description": "Premium",
            "entitlement_ref_id": "premium",
            "expiration": "2026-12-24T08:15:02Z",
            "last_verified": "2026-11-24T08:15:05.120934Z",
            "name": "Premium",
            "purchase_platform": "apple",
            "sku_ref_id": "premium_monthly",
        }
    ],
    "customer_journey_state": {
        "former_subscriber": False,
        "in_account_hold": False,
        "in_grace_period": False,
        "in_trial_period": False,
        "in_intro_offer_period": False,
        "in_pause": False,
        "is_cancelled": False,
    },
    "devices": [
        {
            "id": DEVICE_ID,
            "platform": {
                "id": PLATFORM_ID,
                "name": "App Store",
                "platform_type": "apple",
                "marketplace_app_id": "com.example.app",
            },
        }
    ],
    "event_type": "user.subscription.renewed",
    "event_platform": "apple",
    "external_ids": [
        {
            "key": "original_transaction_id",
            "type": "original_transaction_id",
            "value": "2000000777000001",
        },
        {"key": "external_id", "type": "uuid", "value": EXTERNAL_ID},
    ],
    "user_id": USER_ID,
    "id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "created_date": "2026-11-24T08:15:02.331018+00:00",
}


def renewed_body(**changes: Any) -> dict[str, Any]:
    """The documented `user.subscription.renewed` body, with top-level fields changed."""
    return {**copy.deepcopy(_RENEWED), **changes}


def zero_body() -> dict[str, Any]:
    """The documented body as Nami's docs print it: every UUID all zeros."""
    body = renewed_body(id=ZERO, user_id=ZERO)
    body["devices"][0]["id"] = ZERO
    body["devices"][0]["platform"]["id"] = ZERO
    body["external_ids"][1]["value"] = ZERO
    return body


def transaction_body(**changes: Any) -> dict[str, Any]:
    """A `device.transaction` body: the fields Nami's mParticle feed documents, at the top."""
    body = {
        "id": "7e3f1a2b-0c4d-4e5f-8a6b-9c0d1e2f3a4b",
        "event_type": "device.transaction",
        "created_date": "2026-11-24T08:15:00+00:00",
        "user_id": USER_ID,
        "device_id": DEVICE_ID,
        "app_platform_id": PLATFORM_ID,
        "event_platform": "apple",
        "transaction_id": "2000000777000002",
        "original_transaction_id": "2000000777000001",
        "sku_ref_id": "premium_monthly",
        "price": 9.99,
        "currency": "USD",
        "quantity": 1,
        "locale": "en_US@currency=USD",
        "purchase_env": "production",
        "source": "nami_triggered",
        "subscription_interval": "month",
        "subscription_interval_count": 1,
        "app_env": "production",
    }
    return {**body, **changes}


def write_bodies(path: Path, bodies: list[dict[str, Any] | str]) -> Path:
    lines = [body if isinstance(body, str) else json.dumps(body) for body in bodies]
    path.write_text("\n".join(lines) + "\n")
    return path
