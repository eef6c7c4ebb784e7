"""Nami events as mParticle batches (docs/mparticle.md): mapping, identities, batching,
trimming, schema."""

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nami_pipelines.api_limits import (
    MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS,
    MPARTICLE_MAX_LIST_ENTRIES,
    MPARTICLE_MAX_LIST_ENTRY_CHARS,
)
from nami_pipelines.destinations.mparticle_ids import NAMESPACE
from nami_pipelines.destinations.mparticle_mapping import (
    MParticleBatch,
    build_mparticle_attribute_batch,
    build_mparticle_batches,
)
from nami_pipelines.destinations.outgoing import AttributeUpdateTarget, Skipped
from nami_pipelines.event_types import SENDABLE_EVENT_TYPES, is_user_event
from nami_pipelines.snapshots.attributes import (
    ATTRIBUTE_NAMES,
    FLAG_ATTRIBUTES,
    LIST_ATTRIBUTES,
    UserAttributes,
)
from nami_pipelines_tests.destinations.support import (
    CachedSchemaCheck,
    Item,
    chunk,
    event,
    example_records,
    generated,
    golden,
    mparticle_integration,
    outgoing,
    payload_attributes,
    schema_errors,
)

RECORDS = {record["event_id"]: record for record in example_records()}
IMPRESSION = RECORDS["81b2e614-7ddf-5d95-9cb5-a4cc522f88d4"]
TRANSACTION = RECORDS["18535f1c-3916-57ae-93b0-c9c306062813"]
TRIAL_STARTED = RECORDS["05473c8d-623d-5c0e-a5e8-8730c07f9288"]
RENEWED = RECORDS["3889eaf8-9313-5ee5-813d-9648e6adf35e"]
SANDBOX_PURCHASE = RECORDS["40be0e21-4324-559c-bc9c-ae81d489b246"]  # no external id
EXTERNAL_ID = "3f2e1d0c-b9a8-4765-8432-10fedcba9871"
NAMI_USER_ID = "5d1e0c6a-9b7f-4a2e-8c3d-1f0e9d8c7b61"
SANDBOX_USER_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c62"
GOLDEN = golden("mparticle_batches.json")


def _only_batch(items: list[Item], **options: Any) -> dict[str, Any]:
    batches, skipped = build_mparticle_batches(chunk(items), mparticle_integration(**options))
    assert skipped == []
    assert len(batches) == 1
    return batches[0].body


def _at(minutes: int) -> str:
    return (datetime(2026, 2, 1, 9, tzinfo=UTC) + timedelta(minutes=minutes)).isoformat()


def _flags(value: bool) -> UserAttributes:
    """Empty lists and every flag set to `value`."""
    return {name: [] for name in LIST_ATTRIBUTES} | dict.fromkeys(FLAG_ATTRIBUTES, value)


def test_golden_files_cover_all_13_event_types() -> None:
    assert {entry["event_type"] for entry in GOLDEN} == set(SENDABLE_EVENT_TYPES)
    assert [entry["event_id"] for entry in GOLDEN] == list(RECORDS)


@pytest.mark.parametrize("entry", GOLDEN, ids=[entry["event_type"] for entry in GOLDEN])
def test_each_event_type_maps_to_its_golden_batch(entry: dict[str, Any]) -> None:
    """One event per batch; the example's sandbox user has no external id, hence fallback."""
    body = _only_batch([outgoing(event(RECORDS[entry["event_id"]]))], fallback_to_nami_user_id=True)

    assert body == entry["batch"]
    assert schema_errors(body) == []


def test_transaction_is_a_purchase_commerce_event() -> None:
    """Written out from docs/mparticle.md by hand, independently of the golden files."""
    body = _only_batch([outgoing(event(TRANSACTION, payload={**TRANSACTION["payload"]}))])

    assert body["events"] == [
        {
            "event_type": "commerce_event",
            "data": {
                "source_message_id": "18535f1c-3916-57ae-93b0-c9c306062813",
                "timestamp_unixtime_ms": 1769936490000,
                "product_action": {
                    "action": "purchase",
                    "transaction_id": "2000000512345678",
                    "total_amount": 9.99,
                    "products": [
                        {
                            "id": "premium_monthly",
                            "name": "premium_monthly",
                            "price": 9.99,
                            "quantity": 1,
                        }
                    ],
                },
                "currency_code": "USD",
                "custom_attributes": {
                    "namiml_event_category": "device",
                    "app_env": "production",
                    "locale": "en_US@currency=USD",
                    "impression_id": "81b2e614-7ddf-5d95-9cb5-a4cc522f88d4",
                    "original_transaction_id": "2000000512345678",
                    "purchase_env": "production",
                    "source": "nami_triggered",
                    "subscription_interval": "month",
                    "subcription_interval_count": "1",
                },
            },
        }
    ]
    assert "user_attributes" not in body


def test_total_amount_is_price_times_quantity_in_decimal() -> None:
    payload = {**TRANSACTION["payload"], "price": 9.99, "quantity": 3}
    body = _only_batch([outgoing(event(TRANSACTION, payload=payload))])

    action = body["events"][0]["data"]["product_action"]
    assert action["total_amount"] == 29.97
    assert action["products"][0]["quantity"] == 3


def test_customer_id_is_the_external_id_by_default() -> None:
    body = _only_batch([outgoing(event(RENEWED))])

    assert body["user_identities"] == {"customer_id": EXTERNAL_ID}


def test_customer_id_can_be_the_nami_user_id() -> None:
    batches, skipped = build_mparticle_batches(
        chunk([outgoing(event(RENEWED)), outgoing(event(SANDBOX_PURCHASE))]),
        mparticle_integration(customer_id="nami_user_id"),
    )

    assert skipped == []
    assert [batch.body["user_identities"] for batch in batches] == [
        {"customer_id": NAMI_USER_ID},
        {"customer_id": SANDBOX_USER_ID},
    ]


def test_user_without_external_id_is_skipped_with_the_reason() -> None:
    batches, skipped = build_mparticle_batches(
        chunk([outgoing(event(SANDBOX_PURCHASE)), outgoing(event(RENEWED))]),
        mparticle_integration(),
    )

    assert skipped == [
        Skipped(
            "40be0e21-4324-559c-bc9c-ae81d489b246",
            SANDBOX_USER_ID,
            "no external_id for customer_id and fallback_to_nami_user_id is off",
        )
    ]
    assert [batch.event_ids for batch in batches] == [(RENEWED["event_id"],)]


def test_fallback_sends_the_nami_user_id_when_the_external_id_is_missing() -> None:
    body = _only_batch([outgoing(event(SANDBOX_PURCHASE))], fallback_to_nami_user_id=True)

    assert body["user_identities"] == {"customer_id": SANDBOX_USER_ID}


def test_anonymous_device_event_is_skipped_when_the_nami_user_id_is_the_customer_id() -> None:
    anonymous = event(IMPRESSION, nami_user_id=None)
    batches, skipped = build_mparticle_batches(
        chunk([outgoing(anonymous)]), mparticle_integration(customer_id="nami_user_id")
    )

    assert batches == []
    assert skipped == [Skipped(IMPRESSION["event_id"], None, "no nami_user_id for customer_id")]


def test_partner_identity_is_off_by_default() -> None:
    body = _only_batch([outgoing(event(RENEWED))])

    assert list(body["user_identities"]) == ["customer_id"]


def test_partner_identity_puts_the_nami_user_id_in_the_registered_slot() -> None:
    body = _only_batch([outgoing(event(RENEWED))], partner_identity="other_id_4")

    assert body["user_identities"] == {"customer_id": EXTERNAL_ID, "other_id_4": NAMI_USER_ID}
    assert schema_errors(body) == []


def test_partner_identity_leaves_out_a_placeholder_nami_user_id() -> None:
    zeros = "00000000-0000-0000-0000-000000000000"
    body = _only_batch([outgoing(event(RENEWED, nami_user_id=zeros))], partner_identity="other")

    assert body["user_identities"] == {"customer_id": EXTERNAL_ID}


def test_partner_identity_is_applied_to_attribute_updates_too() -> None:
    batch = build_mparticle_attribute_batch(
        _target(), mparticle_integration(partner_identity="other")
    )

    assert isinstance(batch, MParticleBatch)
    assert batch.body["user_identities"]["other"] == NAMI_USER_ID


def test_sandbox_events_go_to_the_development_environment() -> None:
    body = _only_batch([outgoing(event(RENEWED, environment="sandbox"))])

    assert body["environment"] == "development"
    assert schema_errors(body) == []


def test_sandbox_and_production_events_of_a_user_never_share_a_batch() -> None:
    items = [
        outgoing(event(IMPRESSION)),
        outgoing(event(TRANSACTION, environment="sandbox")),
        outgoing(event(RENEWED)),
    ]
    batches, _ = build_mparticle_batches(chunk(items), mparticle_integration())

    assert [(batch.body["environment"], batch.event_ids) for batch in batches] == [
        ("production", (IMPRESSION["event_id"], RENEWED["event_id"])),
        ("development", (TRANSACTION["event_id"],)),
    ]


def test_sandbox_drop_skips_sandbox_events_with_the_reason() -> None:
    batches, skipped = build_mparticle_batches(
        chunk([outgoing(event(RENEWED, environment="sandbox")), outgoing(event(IMPRESSION))]),
        mparticle_integration(sandbox="drop"),
    )

    assert [batch.event_ids for batch in batches] == [(IMPRESSION["event_id"],)]
    assert skipped == [
        Skipped(
            RENEWED["event_id"],
            NAMI_USER_ID,
            "sandbox environment and the integration is set to sandbox: drop",
        )
    ]


def test_renames_override_the_event_name() -> None:
    renames = {
        "user.subscription.renewed": "Subscription Renewed",
        "device.impression": "Paywall Viewed",
        "device.transaction": "Paywall Purchase",
    }
    body = _only_batch(
        [outgoing(event(IMPRESSION)), outgoing(event(TRANSACTION)), outgoing(event(RENEWED))],
        event_renames=renames,
    )

    names = [(item["event_type"], item["data"].get("event_name")) for item in body["events"]]
    assert names == [
        ("custom_event", "Paywall Viewed"),
        ("commerce_event", "Paywall Purchase"),
        ("custom_event", "Subscription Renewed"),
    ]
    assert schema_errors(body) == []


def test_a_users_batches_end_at_user_events_with_the_attributes_as_of_each() -> None:
    """d1 u1(A) d2 u2(B) u3(B) d3: [d1 u1] with A, [d2 u2 u3] with B (u2 and u3 share B),
    then [d3] without attributes."""
    first, second = _flags(False), _flags(True)
    second_copy = json.loads(json.dumps(second))  # equal, not the same object
    items = [
        (event(IMPRESSION, event_id="d1", occurred_at=_at(0)), None),
        (event(RENEWED, event_id="u1", occurred_at=_at(1)), first),
        (event(TRANSACTION, event_id="d2", occurred_at=_at(2)), None),
        (event(RENEWED, event_id="u2", occurred_at=_at(3)), second),
        (event(RENEWED, event_id="u3", occurred_at=_at(3)), second_copy),
        (event(IMPRESSION, event_id="d3", occurred_at=_at(4)), None),
    ]
    batches, skipped = build_mparticle_batches(chunk(items), mparticle_integration())

    assert skipped == []
    assert [
        (batch.event_ids, batch.body.get("user_attributes", {}).get("namiml_in_trial_period"))
        for batch in batches
    ] == [(("d1", "u1"), "false"), (("d2", "u2", "u3"), "true"), (("d3",), None)]
    assert [len(batch.body["events"]) for batch in batches] == [2, 3, 1]
    assert all(batch.nami_user_id == NAMI_USER_ID for batch in batches)


def test_events_are_ordered_by_time_then_input_order() -> None:
    items = [
        (event(IMPRESSION, event_id="late", occurred_at=_at(5)), None),
        (event(IMPRESSION, event_id="tie-a", occurred_at=_at(1)), None),
        (event(IMPRESSION, event_id="early", occurred_at=_at(0)), None),
        (event(IMPRESSION, event_id="tie-b", occurred_at=_at(1)), None),
    ]
    batches, _ = build_mparticle_batches(chunk(items), mparticle_integration())

    assert [batch.event_ids for batch in batches] == [("early", "tie-a", "tie-b", "late")]
    timestamps = [item["data"]["timestamp_unixtime_ms"] for item in batches[0].body["events"]]
    assert timestamps == sorted(timestamps)


def test_example_users_get_their_own_batches_merged_while_attributes_hold() -> None:
    """A user.* event whose attributes equal the next one's rides in the same batch."""
    items = [outgoing(event(record)) for record in example_records()]
    batches, skipped = build_mparticle_batches(
        chunk(items), mparticle_integration(fallback_to_nami_user_id=True)
    )

    assert skipped == []
    assert [
        (
            batch.body["user_identities"]["customer_id"],
            [RECORDS[i]["event_type"] for i in batch.event_ids],
        )
        for batch in batches
    ] == [
        (
            EXTERNAL_ID,
            [
                "device.impression",
                "device.transaction",
                "user.journey.trial.started",
                "user.subscription.purchased",
            ],
        ),
        (
            EXTERNAL_ID,
            [
                "user.journey.trial.converted",
                "user.subscription.renewed",
                "user.subscription.cancelled",
            ],
        ),
        (EXTERNAL_ID, ["user.subscription.expired"]),
        (SANDBOX_USER_ID, ["user.subscription.purchased"]),
        (SANDBOX_USER_ID, ["user.subscription.in_grace_period"]),
        (SANDBOX_USER_ID, ["user.subscription.renewal_in_grace_period"]),
        (SANDBOX_USER_ID, ["user.subscription.paused"]),
        (SANDBOX_USER_ID, ["user.subscription.resumed"]),
        ("8c7b6a59-4837-4261-9504-f3e2d1c0b9a3", ["user.journey.trial.started"]),
        ("8c7b6a59-4837-4261-9504-f3e2d1c0b9a3", ["user.journey.trial.did_not_convert"]),
    ]


def test_source_request_id_is_stable_for_the_same_batch_and_differs_otherwise() -> None:
    items = [outgoing(event(RENEWED))]
    first = _only_batch(items)["source_request_id"]
    again = _only_batch(items)["source_request_id"]
    other_feed = build_mparticle_batches(
        chunk(items), mparticle_integration(name="mparticle_android")
    )
    other_event = _only_batch([outgoing(event(TRIAL_STARTED))])["source_request_id"]

    assert first == again
    assert uuid.UUID(first).version == 5
    assert other_feed[0][0].body["source_request_id"] != first
    assert other_event != first


def test_source_message_id_is_the_event_id_or_a_stable_uuid_for_other_ids() -> None:
    body = _only_batch(
        [
            outgoing(event(IMPRESSION, event_id="evt-000001")),
            outgoing(event(RENEWED)),
        ]
    )

    message_ids = [item["data"]["source_message_id"] for item in body["events"]]
    assert message_ids == [str(uuid.uuid5(NAMESPACE, "evt-000001")), RENEWED["event_id"]]
    assert schema_errors(body) == []


def test_custom_attribute_values_are_strings_within_the_limit() -> None:
    payload = {
        **IMPRESSION["payload"],
        "name": "n" * (MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS + 10),
        "cta_type": None,
        "initiator": True,
        "controller_name": 12.5,
        "id": {"nested": [1, 2]},
    }
    body = _only_batch([outgoing(event(IMPRESSION, payload=payload))])

    attributes = body["events"][0]["data"]["custom_attributes"]
    assert attributes["name"] == "n" * MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS
    assert "cta_type" not in attributes
    assert attributes["initiator"] == "true"
    assert attributes["controller_name"] == "12.5"
    assert attributes["id"] == '{"nested":[1,2]}'
    assert all(isinstance(value, str) for value in attributes.values())
    assert schema_errors(body) == []


def test_user_attribute_lists_are_trimmed_to_the_limits() -> None:
    attributes = payload_attributes(event(RENEWED)) | {
        "namiml_device_ids": [f"device-{i:05d}" for i in range(MPARTICLE_MAX_LIST_ENTRIES + 5)],
        "namiml_active_skus": ["s" * (MPARTICLE_MAX_LIST_ENTRY_CHARS + 1)],
    }
    body = _only_batch([(event(RENEWED), attributes)])

    sent = body["user_attributes"]
    assert sent["namiml_device_ids"] == [f"device-{i:05d}" for i in range(1000)]
    assert sent["namiml_active_skus"] == ["s" * MPARTICLE_MAX_LIST_ENTRY_CHARS]
    assert sent["namiml_former_subscriber"] == "false"
    assert list(sent) == list(ATTRIBUTE_NAMES)
    assert schema_errors(body) == []


def _target(**changes: Any) -> AttributeUpdateTarget:
    fields: dict[str, Any] = {
        "nami_user_id": NAMI_USER_ID,
        "external_id": EXTERNAL_ID,
        "device_id": "e1d2c3b4-a596-4877-8695-a4b3c2d1e0f1",
        "environment": "production",
        "attributes": payload_attributes(event(RENEWED)),
        "as_of": datetime(2026, 2, 9, tzinfo=UTC),
    }
    return AttributeUpdateTarget(**(fields | changes))


def test_attribute_update_is_a_batch_with_user_attributes_and_no_events() -> None:
    batch = build_mparticle_attribute_batch(_target(), mparticle_integration())

    assert isinstance(batch, MParticleBatch)
    assert batch.event_ids == ()
    assert batch.nami_user_id == NAMI_USER_ID
    assert batch.body == {
        "environment": "production",
        "source_request_id": batch.body["source_request_id"],
        "user_identities": {"customer_id": EXTERNAL_ID},
        "user_attributes": {
            "namiml_active_entitlements": ["premium"],
            "namiml_active_skus": ["premium_monthly"],
            "namiml_device_ids": ["e1d2c3b4-a596-4877-8695-a4b3c2d1e0f1"],
            "namiml_device_platforms": ["8d0f2b8e-1c1f-4a53-9d43-3f0a5b1c2e11"],
            "namiml_former_subscriber": "false",
            "namiml_in_grace_period": "false",
            "namiml_in_trial_period": "false",
            "namiml_in_intro_offer_period": "false",
        },
    }
    assert schema_errors(batch.body) == []


def test_attribute_update_request_id_depends_on_the_instant_and_the_values() -> None:
    integration = mparticle_integration()

    def request_id(target: AttributeUpdateTarget) -> str:
        batch = build_mparticle_attribute_batch(target, integration)
        assert isinstance(batch, MParticleBatch)
        return batch.body["source_request_id"]

    base = request_id(_target())
    assert request_id(_target()) == base
    assert request_id(_target(as_of=datetime(2026, 2, 10, tzinfo=UTC))) != base
    assert request_id(_target(attributes=_flags(True))) != base


def test_attribute_update_skips_like_events() -> None:
    missing = build_mparticle_attribute_batch(_target(external_id=None), mparticle_integration())
    dropped = build_mparticle_attribute_batch(
        _target(environment="sandbox"), mparticle_integration(sandbox="drop")
    )
    development = build_mparticle_attribute_batch(
        _target(environment="sandbox"), mparticle_integration()
    )

    assert missing == Skipped(
        None, NAMI_USER_ID, "no external_id for customer_id and fallback_to_nami_user_id is off"
    )
    assert dropped == Skipped(
        None, NAMI_USER_ID, "sandbox environment and the integration is set to sandbox: drop"
    )
    assert isinstance(development, MParticleBatch)
    assert development.body["environment"] == "development"


@pytest.fixture(scope="module")
def generated_events() -> list[Item]:
    """300 users over 10 days (a seed with all 13 types), both platforms, sandbox users,
    users without an external id, attributes on every user.* event."""
    return generated(users=300, days=10, seed=3)


@pytest.fixture(scope="module")
def schema_check() -> CachedSchemaCheck:
    return CachedSchemaCheck()


@pytest.mark.parametrize(
    "options",
    [
        {"fallback_to_nami_user_id": True},
        {"customer_id": "nami_user_id", "event_renames": {"device.transaction": "Purchase"}},
        {},
    ],
    ids=["external-id-with-fallback", "nami-user-id-renamed", "external-id-only"],
)
def test_every_batch_from_generated_data_validates(
    generated_events: list[Item],
    schema_check: CachedSchemaCheck,
    options: dict[str, Any],
) -> None:
    batches, skipped = build_mparticle_batches(
        chunk(generated_events), mparticle_integration(**options)
    )

    types = Counter(item[0].event_type for item in generated_events)
    assert set(types) == set(SENDABLE_EVENT_TYPES)
    assert {batch.body["environment"] for batch in batches} == {"development", "production"}
    sent = sum(len(batch.event_ids) for batch in batches)
    assert sent + len(skipped) == len(generated_events)
    assert sent > len(generated_events) // 2
    failures = {
        batch.event_ids: errors for batch in batches if (errors := schema_check.errors(batch.body))
    }
    assert failures == {}


def test_every_user_event_from_generated_data_carries_its_own_attributes(
    generated_events: list[Item],
) -> None:
    batches, _ = build_mparticle_batches(
        chunk(generated_events), mparticle_integration(fallback_to_nami_user_id=True)
    )
    expected = {
        item[0].event_id: item[1] for item in generated_events if is_user_event(item[0].event_type)
    }

    checked = 0
    for batch in batches:
        for event_id in batch.event_ids:
            if event_id in expected:
                assert batch.body["user_attributes"] == _as_mparticle(expected[event_id])
                checked += 1
    assert checked == len(expected) > 100


def _as_mparticle(attributes: UserAttributes | None) -> dict[str, Any]:
    assert attributes is not None
    return {
        name: ("true" if value else "false") if isinstance(value, bool) else value
        for name, value in attributes.items()
    }


def test_every_attribute_update_from_generated_data_validates(
    generated_events: list[Item],
) -> None:
    integration = mparticle_integration(fallback_to_nami_user_id=True)
    targets = {
        item[0].nami_user_id: AttributeUpdateTarget(
            item[0].nami_user_id,
            item[0].external_id,
            item[0].device_id,
            item[0].environment,
            item[1],
        )
        for item in generated_events
        if item[1] is not None
    }
    batches = [build_mparticle_attribute_batch(target, integration) for target in targets.values()]

    assert len(batches) > 50
    assert all(isinstance(batch, MParticleBatch) for batch in batches)
    assert [
        schema_errors(batch.body) for batch in batches if isinstance(batch, MParticleBatch)
    ] == [[]] * len(batches)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["events", 0, "data", "custom_event_type"], "impression"),
        (["events", 0, "data", "source_message_id"], "evt-000001"),
        (["environment"], "sandbox"),
        (["user_identities", "namiml_user_id"], NAMI_USER_ID),
        (["user_attributes", "namiml_device_ids"], [["nested"]]),
    ],
)
def test_the_schema_check_is_live(
    schema_check: CachedSchemaCheck, path: list[Any], value: Any
) -> None:
    """Negative controls: each mistake a mapping could make fails both ways of validating."""
    body = _only_batch([outgoing(event(RENEWED))])
    assert schema_errors(body) == schema_check.errors(body) == []
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value

    assert schema_errors(body) != []
    assert schema_check.errors(body) != []
