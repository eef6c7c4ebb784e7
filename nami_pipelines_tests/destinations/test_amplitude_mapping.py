"""Nami events as Amplitude HTTP V2 events and Identify identifications (docs/amplitude.md)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nami_pipelines.api_limits import AMPLITUDE_MAX_ARRAY_ENTRIES, AMPLITUDE_MAX_PROPERTY_CHARS
from nami_pipelines.destinations.amplitude_mapping import (
    amplitude_request_options,
    build_amplitude_events,
    build_identification,
)
from nami_pipelines.destinations.outgoing import AttributeUpdateTarget, Skipped
from nami_pipelines.event_types import SENDABLE_EVENT_TYPES
from nami_pipelines_tests.destinations.support import (
    Item,
    amplitude_integration,
    chunk,
    event,
    example_records,
    generated,
    golden,
    outgoing,
    payload_attributes,
)

RECORDS = {record["event_id"]: record for record in example_records()}
IMPRESSION = RECORDS["81b2e614-7ddf-5d95-9cb5-a4cc522f88d4"]
TRANSACTION = RECORDS["18535f1c-3916-57ae-93b0-c9c306062813"]
RENEWED = RECORDS["3889eaf8-9313-5ee5-813d-9648e6adf35e"]
SANDBOX_PURCHASE = RECORDS["40be0e21-4324-559c-bc9c-ae81d489b246"]  # no external id
EXTERNAL_ID = "3f2e1d0c-b9a8-4765-8432-10fedcba9871"
NAMI_USER_ID = "5d1e0c6a-9b7f-4a2e-8c3d-1f0e9d8c7b61"
DEVICE_ID = "e1d2c3b4-a596-4877-8695-a4b3c2d1e0f1"
SANDBOX_USER_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c62"
SANDBOX_DEVICE_ID = "f0e1d2c3-b4a5-4697-8877-6655443322a2"
APPLE_PLATFORM_ID = "8d0f2b8e-1c1f-4a53-9d43-3f0a5b1c2e11"
GOLDEN = golden("amplitude_events.json")


def _only_event(item: Item, **options: Any) -> dict[str, Any]:
    mapped, skipped = build_amplitude_events(chunk([item]), amplitude_integration(**options))
    assert skipped == []
    assert len(mapped) == 1
    assert mapped[0]["insert_id"] == item[0].event_id
    return mapped[0]


def _skip_reason(item: Item, **options: Any) -> str:
    mapped, skipped = build_amplitude_events(chunk([item]), amplitude_integration(**options))
    assert mapped == []
    assert [entry.event_id for entry in skipped] == [item[0].event_id]
    return skipped[0].reason


def test_golden_files_cover_all_13_event_types() -> None:
    assert {entry["event_type"] for entry in GOLDEN} == set(SENDABLE_EVENT_TYPES)
    assert [entry["event_id"] for entry in GOLDEN] == list(RECORDS)


@pytest.mark.parametrize("entry", GOLDEN, ids=[entry["event_type"] for entry in GOLDEN])
def test_each_event_type_maps_to_its_golden_event(entry: dict[str, Any]) -> None:
    """Default integration: the sandbox user has no external id, so only its device id."""
    body = _only_event(outgoing(event(RECORDS[entry["event_id"]])))

    assert body == entry["event"]


def test_transaction_carries_revenue() -> None:
    """Written out from docs/amplitude.md by hand, independently of the golden files."""
    payload = {**TRANSACTION["payload"], "quantity": 3}

    assert _only_event(outgoing(event(TRANSACTION, payload=payload))) == {
        "event_type": "device.transaction",
        "time": 1769936490000,
        "insert_id": "18535f1c-3916-57ae-93b0-c9c306062813",
        "user_id": EXTERNAL_ID,
        "device_id": DEVICE_ID,
        "platform": "iOS",
        "price": 9.99,
        "quantity": 3,
        "revenue": 29.97,
        "productId": "premium_monthly",
        "revenueType": "purchase",
        "currency": "USD",
        "event_properties": {
            "namiml_event_category": "device",
            "app_env": "production",
            "locale": "en_US@currency=USD",
            "impression_id": "81b2e614-7ddf-5d95-9cb5-a4cc522f88d4",
            "original_transaction_id": "2000000512345678",
            "purchase_env": "production",
            "source": "nami_triggered",
            "subscription_interval": "month",
            "subcription_interval_count": 1,
        },
    }


def test_user_id_can_be_the_nami_user_id() -> None:
    body = _only_event(outgoing(event(RENEWED)), user_id="nami_user_id")

    assert body["user_id"] == NAMI_USER_ID


def test_without_external_id_the_event_goes_with_its_device_only() -> None:
    body = _only_event(outgoing(event(SANDBOX_PURCHASE)))

    assert "user_id" not in body
    assert body["device_id"] == SANDBOX_DEVICE_ID


def test_fallback_sends_the_nami_user_id() -> None:
    body = _only_event(outgoing(event(SANDBOX_PURCHASE)), fallback_to_nami_user_id=True)

    assert body["user_id"] == SANDBOX_USER_ID
    assert body["device_id"] == SANDBOX_DEVICE_ID


def test_event_with_neither_id_is_skipped_with_the_reason() -> None:
    no_devices = {**SANDBOX_PURCHASE["payload"], "devices": []}
    item = outgoing(event(SANDBOX_PURCHASE, payload=no_devices))

    assert _skip_reason(item) == (
        "no external_id for user_id and fallback_to_nami_user_id is off; no device_id"
    )
    assert _only_event(item, user_id="nami_user_id")["user_id"] == SANDBOX_USER_ID


def test_user_event_device_is_the_users_one_device_on_the_events_platform() -> None:
    second_apple = {"id": "11111111-2222-4333-8444-555555555555", "platform": {"id": "other"}}
    google = {"id": "g-device-0001", "platform": {"id": "google-platform"}}
    payload = {**RENEWED["payload"], "devices": [*RENEWED["payload"]["devices"], google]}
    ambiguous = {
        **RENEWED["payload"],
        "devices": [
            *RENEWED["payload"]["devices"],
            {**second_apple, "platform": {"id": APPLE_PLATFORM_ID}},
        ],
    }

    assert _only_event(outgoing(event(RENEWED, payload=payload)))["device_id"] == DEVICE_ID
    assert "device_id" not in _only_event(outgoing(event(RENEWED, payload=ambiguous)))


def test_user_event_device_falls_back_to_the_platform_type() -> None:
    payload = {
        **RENEWED["payload"],
        "devices": [
            {"id": "android-device-1", "platform": {"platform_type": "google"}},
            {"id": "apple-device-01", "platform": {"platform_type": "apple"}},
        ],
    }
    body = _only_event(outgoing(event(RENEWED, payload=payload, app_platform_id=None)))

    assert body["device_id"] == "apple-device-01"


def test_the_events_own_device_id_wins() -> None:
    body = _only_event(outgoing(event(RENEWED, device_id="explicit-device")))

    assert body["device_id"] == "explicit-device"


def test_short_ids_are_dropped_and_an_event_left_without_ids_is_skipped() -> None:
    short_user = outgoing(event(IMPRESSION, external_id="abc"))
    both_short = outgoing(event(IMPRESSION, external_id="abc", device_id="d1"))

    body = _only_event(short_user)
    assert "user_id" not in body
    assert body["device_id"] == DEVICE_ID
    assert _skip_reason(both_short) == (
        "user_id has 3 characters, under the minimum of 5 (min_id_length); "
        "device_id has 2 characters, under the minimum of 5 (min_id_length)"
    )


def test_min_id_length_lets_short_ids_through_and_sets_the_request_option() -> None:
    item = outgoing(event(IMPRESSION, external_id="abc", device_id="d1"))
    body = _only_event(item, min_id_length=2)

    assert (body["user_id"], body["device_id"]) == ("abc", "d1")
    assert amplitude_request_options(amplitude_integration(min_id_length=2)) == {"min_id_length": 2}
    assert amplitude_request_options(amplitude_integration()) is None


def test_sandbox_events_are_tagged_or_dropped() -> None:
    item = outgoing(event(RENEWED, environment="sandbox"))

    assert _only_event(item)["event_properties"]["environment"] == "sandbox"
    assert "environment" not in _only_event(outgoing(event(RENEWED)))["event_properties"]
    assert _skip_reason(item, sandbox="drop") == (
        "sandbox environment and the integration is set to sandbox: drop"
    )


def test_renames_set_the_event_type() -> None:
    renames = {"user.subscription.renewed": "Subscription Renewed"}

    assert _only_event(outgoing(event(RENEWED)), event_renames=renames)["event_type"] == (
        "Subscription Renewed"
    )
    assert _only_event(outgoing(event(IMPRESSION)), event_renames=renames)["event_type"] == (
        "device.impression"
    )


def test_platforms_are_named_as_amplitudes_sdks_name_them() -> None:
    platforms = {
        platform_type: _only_event(outgoing(event(IMPRESSION, platform_type=platform_type))).get(
            "platform"
        )
        for platform_type in ("apple", "google", "amazon", "roku", "web", "tvos")
    }

    assert platforms == {
        "apple": "iOS",
        "google": "Android",
        "amazon": "Android",
        "roku": "Roku",
        "web": "Web",
        "tvos": "tvos",
    }


def test_values_are_trimmed_to_amplitudes_limits() -> None:
    payload = {**IMPRESSION["payload"], "name": "n" * 5000, "cta_type": None}
    attributes = payload_attributes(event(RENEWED)) | {
        "namiml_device_ids": [f"d{i:05d}" for i in range(AMPLITUDE_MAX_ARRAY_ENTRIES + 1)],
        "namiml_active_skus": ["s" * 2000],
    }
    impression = _only_event(outgoing(event(IMPRESSION, payload=payload)))
    renewed = _only_event((event(RENEWED), attributes))

    assert impression["event_properties"]["name"] == "n" * AMPLITUDE_MAX_PROPERTY_CHARS
    assert "cta_type" not in impression["event_properties"]
    assert renewed["user_properties"]["namiml_device_ids"] == [f"d{i:05d}" for i in range(1000)]
    assert renewed["user_properties"]["namiml_active_skus"] == ["s" * 1024]


def test_device_events_carry_no_user_properties() -> None:
    assert "user_properties" not in _only_event(outgoing(event(IMPRESSION)))


def test_events_come_out_in_time_order() -> None:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    items = [
        outgoing(event(IMPRESSION, event_id=name, occurred_at=(start + offset).isoformat()))
        for name, offset in (
            ("late", timedelta(hours=2)),
            ("tie-a", timedelta(hours=1)),
            ("early", timedelta()),
            ("tie-b", timedelta(hours=1)),
        )
    ]
    mapped, _ = build_amplitude_events(chunk(items), amplitude_integration())

    assert [item["insert_id"] for item in mapped] == ["early", "tie-a", "tie-b", "late"]


def _target(**changes: Any) -> AttributeUpdateTarget:
    fields: dict[str, Any] = {
        "nami_user_id": NAMI_USER_ID,
        "external_id": EXTERNAL_ID,
        "device_id": DEVICE_ID,
        "environment": "production",
        "attributes": payload_attributes(event(RENEWED)),
    }
    return AttributeUpdateTarget(**(fields | changes))


def test_identification_sets_the_eight_attributes_natively() -> None:
    assert build_identification(_target(), amplitude_integration()) == {
        "user_id": EXTERNAL_ID,
        "device_id": DEVICE_ID,
        "user_properties": {
            "$set": {
                "namiml_active_entitlements": ["premium"],
                "namiml_active_skus": ["premium_monthly"],
                "namiml_device_ids": [DEVICE_ID],
                "namiml_device_platforms": [APPLE_PLATFORM_ID],
                "namiml_former_subscriber": False,
                "namiml_in_grace_period": False,
                "namiml_in_trial_period": False,
                "namiml_in_intro_offer_period": False,
            }
        },
    }


def test_identification_ids_and_skips() -> None:
    integration = amplitude_integration()
    no_user = build_identification(_target(external_id=None), integration)
    nothing = build_identification(_target(external_id=None, device_id=None), integration)
    short = build_identification(
        _target(external_id="abc", device_id=None), amplitude_integration(min_id_length=2)
    )
    dropped = build_identification(
        _target(environment="sandbox"), amplitude_integration(sandbox="drop")
    )

    assert isinstance(no_user, dict)
    assert (no_user.get("user_id"), no_user["device_id"]) == (None, DEVICE_ID)
    assert nothing == Skipped(
        None,
        NAMI_USER_ID,
        "no external_id for user_id and fallback_to_nami_user_id is off; no device_id",
    )
    # The Identify API takes no options: the default minimum holds whatever the integration says.
    assert short == Skipped(
        None,
        NAMI_USER_ID,
        "user_id has 3 characters, under the minimum of 5 (min_id_length); no device_id",
    )
    assert dropped == Skipped(
        None, NAMI_USER_ID, "sandbox environment and the integration is set to sandbox: drop"
    )


def test_generated_events_all_map_with_the_fields_amplitude_types() -> None:
    """Every generated event maps, or is skipped for a stated reason, with Amplitude's types."""
    items = generated(users=300, days=10, seed=3)
    mapped, skipped = build_amplitude_events(chunk(items), amplitude_integration())

    assert len(mapped) + len(skipped) == len(items)
    assert {item["event_type"] for item in mapped} == set(SENDABLE_EVENT_TYPES)
    assert all(entry.reason for entry in skipped)
    problems = [item["insert_id"] for item in mapped if _type_problems(item)]
    assert problems == []


def _type_problems(body: dict[str, Any]) -> list[str]:
    expected = {
        "event_type": str,
        "time": int,
        "insert_id": str,
        "user_id": str,
        "device_id": str,
        "platform": str,
        "event_properties": dict,
        "user_properties": dict,
        "price": (int, float),
        "quantity": int,
        "revenue": (int, float),
        "productId": str,
        "revenueType": str,
        "currency": str,
    }
    problems = [name for name in body if name not in expected]
    problems += [
        name for name, kind in expected.items() if name in body and not isinstance(body[name], kind)
    ]
    if "user_id" not in body and "device_id" not in body:
        problems.append("no id")
    return problems
