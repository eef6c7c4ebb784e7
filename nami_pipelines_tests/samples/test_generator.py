"""The sample-event generator: deterministic, in the input format (docs/input.md), and journeys
that hold together.

Each consistency check walks real generated journeys and counts what it checked, so a check that
finds nothing to look at fails instead of passing vacuously.
"""

import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nami_pipelines.event_types import (
    DEVICE_IMPRESSION,
    DEVICE_TRANSACTION,
    JOURNEY_STATE_FLAGS,
    SENDABLE_EVENT_TYPES,
    is_user_event,
)
from nami_pipelines.events.validation import validate_event
from nami_pipelines.samples import (
    APP_PLATFORM_IDS,
    PAYWALLS,
    PLATFORMS,
    PRODUCTION_APP_ID,
    SKUS,
    STAGING_APP_ID,
    generate_events,
    write_events_ndjson,
)

START = date(2026, 2, 1)
DAYS = 30
WINDOW_START = datetime(2026, 2, 1, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=DAYS)
USERS = 1000
SEED = 7

RECORD_KEYS = {
    "event_id",
    "event_type",
    "occurred_at",
    "app_id",
    "app_platform_id",
    "platform_type",
    "nami_user_id",
    "external_id",
    "device_id",
    "environment",
    "payload",
}
USER_PAYLOAD_KEYS = {"active_entitlements", "customer_journey_state", "devices", "external_ids"}
ENTITLEMENT_KEYS = {"entitlement_ref_id", "sku_ref_id", "expiration", "purchase_platform"}
IMPRESSION_KEYS = {
    "id",
    "developer_paywall_id",
    "name",
    "cta_type",
    "controller_name",
    "initiator",
    "app_env",
}
TRANSACTION_KEYS = {
    "transaction_id",
    "original_transaction_id",
    "sku_ref_id",
    "price",
    "currency",
    "quantity",
    "locale",
    "impression_id",
    "purchase_env",
    "source",
    "subscription_interval",
    "subscription_interval_count",
    "app_env",
}
ENTITLEMENT_GONE = {
    "user.subscription.expired",
    "user.journey.trial.did_not_convert",
    "user.subscription.paused",
}
CHARGED = {
    "user.journey.trial.converted",
    "user.subscription.renewed",
    "user.subscription.renewal_in_grace_period",
    "user.subscription.resumed",
}

Record = dict[str, Any]


@pytest.fixture(scope="module")
def events() -> list[Record]:
    return list(generate_events(USERS, DAYS, START, SEED))


@pytest.fixture(scope="module")
def by_user(events: list[Record]) -> dict[str, list[Record]]:
    """Each user's events in the order generated, which must be time order."""
    users: dict[str, list[Record]] = defaultdict(list)
    for record in events:
        users[record["nami_user_id"]].append(record)
    return users


def at(record: Record) -> datetime:
    return datetime.fromisoformat(record["occurred_at"])


def expiration(entitlement: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entitlement["expiration"])


def of_type(events: Iterable[Record], *event_types: str) -> list[Record]:
    """The events of these types; there must be some, or the check using them proves nothing."""
    found = [record for record in events if record["event_type"] in event_types]
    assert found, f"no {event_types} event to check"
    return found


def user_events(events: Iterable[Record]) -> list[Record]:
    found = [record for record in events if is_user_event(record["event_type"])]
    assert found, "no user.* event to check"
    return found


def is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


# Determinism and streaming.


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.ndjson", tmp_path / "b.ndjson", tmp_path / "c.ndjson"
    count = write_events_ndjson(first, 200, DAYS, START, SEED)
    assert write_events_ndjson(second, 200, DAYS, START, SEED) == count
    write_events_ndjson(other, 200, DAYS, START, SEED + 1)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert count == len(first.read_bytes().splitlines()) > 0


def test_file_holds_exactly_the_generated_records(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    count = write_events_ndjson(path, 50, DAYS, START, SEED, show_progress=True)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == count
    assert [json.loads(line) for line in lines] == list(generate_events(50, DAYS, START, SEED))


def test_a_user_does_not_depend_on_how_many_users_are_generated() -> None:
    fewer = list(generate_events(30, DAYS, START, SEED))
    more = list(generate_events(60, DAYS, START, SEED))
    assert fewer and more[: len(fewer)] == fewer
    assert len(more) > len(fewer)


def test_generation_is_lazy() -> None:
    """Ten million users would not fit in memory: the first record must come at once."""
    began = time.perf_counter()
    first = next(generate_events(10_000_000, DAYS, START, SEED))
    assert time.perf_counter() - began < 1
    assert set(first) == RECORD_KEYS


@pytest.mark.parametrize(("users", "days"), [(-1, 30), (10, 0)])
def test_bad_arguments_are_refused(users: int, days: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be"):
        generate_events(users, days, START, SEED)  # at the call, before any iteration
    with pytest.raises(ValueError, match="must be"):
        write_events_ndjson(tmp_path / "x.ndjson", users, days, START, SEED)


# Format (docs/input.md).


def test_all_thirteen_event_types_are_present(events: list[Record]) -> None:
    assert set(Counter(record["event_type"] for record in events)) == set(SENDABLE_EVENT_TYPES)


def test_every_record_has_the_spec_columns_with_valid_values(events: list[Record]) -> None:
    for record in events:
        assert set(record) == RECORD_KEYS, record
        assert is_uuid(record["event_id"]), record["event_id"]
        assert record["occurred_at"].endswith("+00:00"), record["occurred_at"]
        assert WINDOW_START <= at(record) < WINDOW_END, record["occurred_at"]
        assert record["app_id"] in (PRODUCTION_APP_ID, STAGING_APP_ID)
        platform = (record["app_id"], record["platform_type"])
        assert APP_PLATFORM_IDS[platform] == record["app_platform_id"], record
        assert is_uuid(record["nami_user_id"])
        assert record["external_id"] is None or is_uuid(record["external_id"])
        assert record["environment"] in ("production", "sandbox")
        assert isinstance(record["payload"], dict)
        if is_user_event(record["event_type"]):
            assert record["device_id"] is None, record
        else:
            assert is_uuid(record["device_id"]), record


def test_event_ids_are_unique(events: list[Record]) -> None:
    assert len({record["event_id"] for record in events}) == len(events)


def test_every_record_passes_the_loader_validation(events: list[Record]) -> None:
    for record in events:
        validate_event(record, now=WINDOW_END)


def test_users_events_come_in_time_order(by_user: dict[str, list[Record]]) -> None:
    for records in by_user.values():
        times = [at(record) for record in records]
        assert times == sorted(times)


def test_payload_shapes_match_the_example_file(events: list[Record]) -> None:
    for record in user_events(events):
        payload = record["payload"]
        assert set(payload) == USER_PAYLOAD_KEYS, payload
        assert list(payload["customer_journey_state"]) == list(JOURNEY_STATE_FLAGS)
        assert all(isinstance(flag, bool) for flag in payload["customer_journey_state"].values())
        for entitlement in payload["active_entitlements"]:
            assert set(entitlement) == ENTITLEMENT_KEYS
            assert entitlement["entitlement_ref_id"] == "premium"
            assert entitlement["sku_ref_id"] in SKUS
            assert entitlement["expiration"].endswith("+00:00")
            assert entitlement["purchase_platform"] == record["platform_type"]
    for record in of_type(events, DEVICE_IMPRESSION):
        assert set(record["payload"]) == IMPRESSION_KEYS
        assert record["payload"]["id"] == record["event_id"]
        assert record["payload"]["initiator"] in ("nami_ml", "nami_rules", "user", "unknown")
    paywalls = {
        record["payload"]["developer_paywall_id"] for record in of_type(events, DEVICE_IMPRESSION)
    }
    assert paywalls == {paywall.developer_paywall_id for paywall in PAYWALLS}
    for record in of_type(events, DEVICE_TRANSACTION):
        assert set(record["payload"]) == TRANSACTION_KEYS


# Population.


def test_population_covers_apps_platforms_and_environments(
    by_user: dict[str, list[Record]],
) -> None:
    apps = Counter(records[0]["app_id"] for records in by_user.values())
    assert 0.7 < apps[PRODUCTION_APP_ID] / len(by_user) < 0.97, apps
    staging = [records for records in by_user.values() if records[0]["app_id"] == STAGING_APP_ID]
    staging_sandbox = sum(records[0]["environment"] == "sandbox" for records in staging)
    assert staging_sandbox / len(staging) > 0.5
    platforms = Counter(record["platform_type"] for rs in by_user.values() for record in rs)
    assert set(platforms) == set(PLATFORMS)
    environments = Counter(record["environment"] for rs in by_user.values() for record in rs)
    assert 0.04 < environments["sandbox"] / environments.total() < 0.15, environments


def test_sandbox_events_say_so_in_their_payloads(events: list[Record]) -> None:
    for record in of_type(events, DEVICE_IMPRESSION, DEVICE_TRANSACTION):
        payload = record["payload"]
        assert payload["app_env"] == record["environment"]
        assert payload.get("purchase_env", record["environment"]) == record["environment"]


def test_identity_mix(by_user: dict[str, list[Record]]) -> None:
    never, later, always = 0, 0, 0
    for records in by_user.values():
        known = [record["external_id"] is not None for record in records]
        if not any(known):
            never += 1
        elif all(known):
            always += 1
        else:
            later += 1
            first_known = known.index(True)
            assert all(known[first_known:]), "an external id, once known, stays known"
            assert len({r["external_id"] for r in records[first_known:]}) == 1
    assert never > 0.1 * len(by_user)
    assert later > 0.05 * len(by_user)
    assert always > 0.3 * len(by_user)


def test_some_users_use_several_devices_and_both_platforms(
    by_user: dict[str, list[Record]],
) -> None:
    several = both = 0
    for records in by_user.values():
        devices = {record["device_id"] for record in records if record["device_id"]}
        several += len(devices) > 1
        both += len({record["platform_type"] for record in records}) > 1
    assert several > 0.05 * len(by_user)
    assert both > 0.01 * len(by_user)


def test_some_users_only_see_paywalls(by_user: dict[str, list[Record]]) -> None:
    browsers = [
        records
        for records in by_user.values()
        if {record["event_type"] for record in records} == {DEVICE_IMPRESSION}
    ]
    assert len(browsers) > 0.2 * len(by_user)


def test_volume_per_user_is_realistic(
    events: list[Record], by_user: dict[str, list[Record]]
) -> None:
    assert 10 <= len(events) / USERS <= 40
    assert len(by_user) > 0.9 * USERS


# Journeys.


def test_state_flags_agree_with_the_entitlements(events: list[Record]) -> None:
    for record in user_events(events):
        payload = record["payload"]
        state = payload["customer_journey_state"]
        entitlements = payload["active_entitlements"]
        for entitlement in entitlements:
            assert expiration(entitlement) > at(record), record
        if state["in_trial_period"] or state["in_grace_period"] or state["is_cancelled"]:
            assert entitlements or record["event_type"] in ENTITLEMENT_GONE, record
        if state["in_pause"]:
            assert not entitlements and record["platform_type"] == "google", record


def test_trial_events_carry_a_running_trial(events: list[Record]) -> None:
    for record in of_type(events, "user.journey.trial.started"):
        state = record["payload"]["customer_journey_state"]
        [entitlement] = record["payload"]["active_entitlements"]
        assert state["in_trial_period"]
        assert expiration(entitlement) - at(record) <= timedelta(days=7)


def test_trial_state_lasts_from_start_to_conversion_or_end(
    by_user: dict[str, list[Record]],
) -> None:
    in_trial_events_after_start = 0
    for records in by_user.values():
        in_trial = False
        for record in records:
            if not is_user_event(record["event_type"]):
                continue
            if record["event_type"] == "user.journey.trial.started":
                in_trial = True
            elif record["event_type"] in (
                "user.journey.trial.converted",
                "user.journey.trial.did_not_convert",
            ):
                in_trial = False
            assert record["payload"]["customer_journey_state"]["in_trial_period"] == in_trial
            in_trial_events_after_start += in_trial and record["event_type"] not in (
                "user.journey.trial.started",
                "user.subscription.purchased",
            )
    assert in_trial_events_after_start, "no event (e.g. a cancellation) inside a trial"


def test_ended_subscriptions_have_no_entitlement(events: list[Record]) -> None:
    for record in of_type(events, *ENTITLEMENT_GONE):
        assert record["payload"]["active_entitlements"] == [], record
        state = record["payload"]["customer_journey_state"]
        assert not state["in_trial_period"] and not state["in_intro_offer_period"]
    for record in of_type(events, "user.subscription.expired"):
        assert record["payload"]["customer_journey_state"]["former_subscriber"], record
    for record in of_type(events, "user.subscription.paused"):
        assert record["payload"]["customer_journey_state"]["in_pause"], record


def test_cancelled_keeps_the_entitlement_until_it_expires(events: list[Record]) -> None:
    for record in of_type(events, "user.subscription.cancelled"):
        assert record["payload"]["customer_journey_state"]["is_cancelled"], record
        assert record["payload"]["active_entitlements"], record


def test_grace_period_extends_the_entitlement(by_user: dict[str, list[Record]]) -> None:
    checked = 0
    for records in by_user.values():
        previous: Record | None = None
        for record in records:
            if not is_user_event(record["event_type"]):
                continue
            if record["event_type"] == "user.subscription.in_grace_period":
                assert record["payload"]["customer_journey_state"]["in_grace_period"]
                [entitlement] = record["payload"]["active_entitlements"]
                assert expiration(entitlement) > at(record)
                if previous and previous["payload"]["active_entitlements"]:
                    [before] = previous["payload"]["active_entitlements"]
                    assert expiration(entitlement) > expiration(before)
                    checked += 1
            previous = record
    assert checked


def test_charges_come_with_a_transaction_and_a_later_expiration(
    by_user: dict[str, list[Record]],
) -> None:
    checked = 0
    for records in by_user.values():
        transactions = {
            (record["occurred_at"], record["payload"]["sku_ref_id"])
            for record in records
            if record["event_type"] == DEVICE_TRANSACTION
        }
        for record in records:
            payload = record["payload"]
            if record["event_type"] in CHARGED:
                [entitlement] = payload["active_entitlements"]
                assert (record["occurred_at"], entitlement["sku_ref_id"]) in transactions, record
                assert not payload["customer_journey_state"]["in_grace_period"]
                assert not payload["customer_journey_state"]["in_pause"]
                checked += 1
            if record["event_type"] == "user.subscription.purchased":
                [entitlement] = payload["active_entitlements"]
                bought = (at(record) - timedelta(seconds=1)).isoformat()
                assert (bought, entitlement["sku_ref_id"]) in transactions, record
                checked += 1
    assert checked


def test_transactions_match_the_sku_catalogue(events: list[Record]) -> None:
    for record in of_type(events, DEVICE_TRANSACTION):
        payload = record["payload"]
        sku = SKUS[payload["sku_ref_id"]]
        currency = payload["currency"]
        assert payload["price"] in (sku.prices[currency], sku.intro_prices[currency]), payload
        assert payload["subscription_interval"] == sku.interval
        assert payload["subscription_interval_count"] == sku.interval_count
        assert payload["quantity"] == 1
        assert currency in payload["locale"] or record["platform_type"] == "google"
        assert (payload["impression_id"] is None) == (payload["source"] != "nami_triggered")


def test_a_user_pays_in_one_currency(by_user: dict[str, list[Record]]) -> None:
    checked = 0
    for records in by_user.values():
        currencies = {
            record["payload"]["currency"]
            for record in records
            if record["event_type"] == DEVICE_TRANSACTION
        }
        assert len(currencies) <= 1
        checked += len(currencies)
    assert checked


def test_intro_offer_is_charged_the_intro_price(by_user: dict[str, list[Record]]) -> None:
    checked = 0
    for records in by_user.values():
        prices = {
            record["occurred_at"]: record["payload"]["price"]
            for record in records
            if record["event_type"] == DEVICE_TRANSACTION
        }
        for record in records:
            if record["event_type"] in CHARGED and record["occurred_at"] in prices:
                state = record["payload"]["customer_journey_state"]
                [entitlement] = record["payload"]["active_entitlements"]
                sku = SKUS[entitlement["sku_ref_id"]]
                expected = sku.intro_prices if state["in_intro_offer_period"] else sku.prices
                assert prices[record["occurred_at"]] in expected.values()
                checked += state["in_intro_offer_period"]
    assert checked


def test_renewals_keep_the_original_transaction_id(by_user: dict[str, list[Record]]) -> None:
    renewed_chains = 0
    all_transaction_ids: list[str] = []
    for records in by_user.values():
        chains: dict[str, set[str]] = defaultdict(set)
        for record in of_type(records, DEVICE_TRANSACTION) if _buys(records) else []:
            payload = record["payload"]
            chains[payload["original_transaction_id"]].add(payload["sku_ref_id"])
            all_transaction_ids.append(payload["transaction_id"])
        assert len(chains) <= 1, "one subscription per user"
        for skus in chains.values():
            assert len(skus) == 1
        counts = Counter(
            r["payload"]["original_transaction_id"]
            for r in records
            if r["event_type"] == DEVICE_TRANSACTION
        )
        renewed_chains += any(count > 1 for count in counts.values())
    assert renewed_chains > 0
    assert len(set(all_transaction_ids)) == len(all_transaction_ids)


def _buys(records: list[Record]) -> bool:
    return any(record["event_type"] == DEVICE_TRANSACTION for record in records)


def test_paywall_purchases_point_at_an_earlier_impression_of_the_user(
    by_user: dict[str, list[Record]],
) -> None:
    linked = 0
    for records in by_user.values():
        seen: dict[str, Record] = {}
        for record in records:
            if record["event_type"] == DEVICE_IMPRESSION:
                seen[record["event_id"]] = record
            elif record["event_type"] == DEVICE_TRANSACTION and record["payload"]["impression_id"]:
                impression = seen.get(record["payload"]["impression_id"])
                assert impression is not None, record
                assert impression["device_id"] == record["device_id"]
                linked += 1
    assert linked


def test_user_payload_devices_include_every_device_used_so_far(
    by_user: dict[str, list[Record]],
) -> None:
    checked = 0
    for records in by_user.values():
        used: dict[str, tuple[str, str]] = {}
        listed_before: set[str] = set()
        for record in records:
            if record["device_id"]:
                used[record["device_id"]] = (record["app_platform_id"], record["platform_type"])
                continue
            listed = {
                device["id"]: (device["platform"]["id"], device["platform"]["platform_type"])
                for device in record["payload"]["devices"]
            }
            assert listed, record
            for device_id, platform in used.items():
                assert listed.get(device_id) == platform, (device_id, record)
            assert listed_before <= set(listed), "devices never disappear"
            listed_before = set(listed)
            checked += len(used)
    assert checked


def test_external_ids_in_payloads_follow_the_column(events: list[Record]) -> None:
    for record in user_events(events):
        external_id = record["external_id"]
        expected = [{"key": "external_id", "type": "uuid", "value": external_id}]
        assert record["payload"]["external_ids"] == (expected if external_id else [])


def test_some_entitlements_expire_without_an_event(by_user: dict[str, list[Record]]) -> None:
    """The snapshot must expire entitlements on its own: inside the window and after it."""
    silent_inside = after_window = 0
    for records in by_user.values():
        last = [record for record in records if is_user_event(record["event_type"])]
        if not last or not last[-1]["payload"]["active_entitlements"]:
            continue
        [entitlement] = last[-1]["payload"]["active_entitlements"]
        if expiration(entitlement) < WINDOW_END:
            silent_inside += 1
        else:
            after_window += 1
    assert silent_inside > 0
    assert after_window > 0
