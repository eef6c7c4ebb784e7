"""Every attribute rule of docs/attributes.md, on hand-written journeys, against the
from-scratch snapshot function."""

from typing import Any

from nami_pipelines.snapshots.compute import compute_snapshot
from nami_pipelines_tests.builders import APPLE_PLATFORM, GOOGLE_PLATFORM, EventLog

PURCHASED = "user.subscription.purchased"
TRIAL_STARTED = "user.journey.trial.started"
EXPIRED = "user.subscription.expired"
IMPRESSION = "device.impression"


def user_at(log: EventLog, at: str, user: str = "u1") -> dict[str, Any]:
    snapshot = compute_snapshot(log.frame(), at)
    rows = snapshot[snapshot["nami_user_id"] == user].to_dict("records")
    assert len(rows) == 1, f"expected one row for {user}, got {len(rows)}"
    return rows[0]


def test_entitlement_expires_without_an_event():
    log = EventLog()
    log.user_event(
        "u1",
        TRIAL_STARTED,
        "2026-02-01T10:00:00+00:00",
        entitlements=[("premium", "premium_monthly", "2026-02-08T10:00:00+00:00")],
        in_trial_period=True,
    )
    before = user_at(log, "2026-02-08T09:59:59+00:00")
    assert before["namiml_active_entitlements"] == ["premium"]
    assert before["namiml_active_skus"] == ["premium_monthly"]
    assert before["namiml_in_trial_period"] is True
    at_expiry = user_at(log, "2026-02-08T10:00:00+00:00")
    assert at_expiry["namiml_active_entitlements"] == []
    assert at_expiry["namiml_active_skus"] == []
    assert at_expiry["namiml_in_trial_period"] is False
    assert at_expiry["namiml_former_subscriber"] is False  # a trial is not a payment


def test_null_expiration_never_expires():
    log = EventLog()
    log.user_event(
        "u1", PURCHASED, "2026-02-01T10:00:00+00:00", entitlements=[("lifetime", "life", None)]
    )
    assert user_at(log, "2030-01-01T00:00:00+00:00")["namiml_active_entitlements"] == ["lifetime"]


def test_latest_user_event_wins_whatever_the_load_order():
    log = EventLog()
    # Loaded first, but happened later: the user's entitlement ended.
    log.user_event("u1", EXPIRED, "2026-02-10T00:00:00+00:00", former_subscriber=True)
    log.user_event(
        "u1",
        PURCHASED,
        "2026-02-01T00:00:00+00:00",
        entitlements=[("premium", "premium_annual", "2027-02-01T00:00:00+00:00")],
    )
    after = user_at(log, "2026-02-11T00:00:00+00:00")
    assert after["namiml_active_entitlements"] == []
    assert after["namiml_former_subscriber"] is True
    between = user_at(log, "2026-02-05T00:00:00+00:00")
    assert between["namiml_active_entitlements"] == ["premium"]
    assert between["namiml_former_subscriber"] is False


def test_same_instant_ties_are_broken_by_load_order():
    log = EventLog()
    at = "2026-02-01T09:00:00+00:00"
    log.user_event("u1", PURCHASED, at, entitlements=[("premium", "sku_a", None)])
    log.user_event("u1", "user.subscription.renewed", at, entitlements=[("premium", "sku_b", None)])
    assert user_at(log, at)["namiml_active_skus"] == ["sku_b"]


def test_events_after_the_instant_are_ignored():
    log = EventLog()
    log.user_event("u1", PURCHASED, "2026-02-01T00:00:00+00:00", entitlements=[("a", "s", None)])
    log.user_event("u1", EXPIRED, "2026-02-03T00:00:00+00:00")
    log.device_event("u2", IMPRESSION, "2026-02-04T00:00:00+00:00", device="d-late")
    snapshot = compute_snapshot(log.frame(), "2026-02-02T00:00:00+00:00")
    assert snapshot["nami_user_id"].tolist() == ["u1"]
    assert snapshot.iloc[0]["namiml_active_entitlements"] == ["a"]


def test_lists_are_distinct_and_sorted():
    log = EventLog()
    log.user_event(
        "u1",
        PURCHASED,
        "2026-02-01T00:00:00+00:00",
        entitlements=[
            ("pro", "sku_z", None),
            ("basic", "sku_b", None),
            ("pro", "sku_a", None),
            ("old", "sku_old", "2026-01-01T00:00:00+00:00"),
        ],
    )
    row = user_at(log, "2026-02-02T00:00:00+00:00")
    assert row["namiml_active_entitlements"] == ["basic", "pro"]
    assert row["namiml_active_skus"] == ["sku_a", "sku_b", "sku_z"]


def test_devices_across_platforms_with_latest_platform_winning():
    log = EventLog()
    log.device_event(
        "u1", IMPRESSION, "2026-02-01T00:00:00+00:00", device="d-2", platform=APPLE_PLATFORM
    )
    log.user_event(
        "u1",
        PURCHASED,
        "2026-02-02T00:00:00+00:00",
        devices=[("d-1", GOOGLE_PLATFORM), ("d-3", None)],
        platform=APPLE_PLATFORM,
    )
    # d-2 later shows up in a payload with another platform: the latest sighting wins.
    log.user_event(
        "u1",
        "user.subscription.renewed",
        "2026-02-03T00:00:00+00:00",
        devices=[("d-2", GOOGLE_PLATFORM)],
    )
    row = user_at(log, "2026-02-04T00:00:00+00:00")
    assert row["namiml_device_ids"] == ["d-1", "d-2", "d-3"]
    # d-3 has no platform in the payload: the event's app_platform_id stands in.
    assert row["namiml_device_platforms"] == [GOOGLE_PLATFORM, GOOGLE_PLATFORM, APPLE_PLATFORM]
    earlier = user_at(log, "2026-02-01T12:00:00+00:00")
    assert earlier["namiml_device_ids"] == ["d-2"]
    assert earlier["namiml_device_platforms"] == [APPLE_PLATFORM]


def test_former_subscriber_from_the_journey_state():
    log = EventLog()
    log.user_event(
        "u1",
        PURCHASED,
        "2026-02-01T00:00:00+00:00",
        entitlements=[("premium", "s", None)],
        former_subscriber=True,
    )
    assert user_at(log, "2026-02-02T00:00:00+00:00")["namiml_former_subscriber"] is True


def test_former_subscriber_once_paid_and_nothing_active_now():
    log = EventLog()
    log.user_event(
        "u1",
        PURCHASED,
        "2026-02-01T00:00:00+00:00",
        entitlements=[("p", "s", "2026-03-01T00:00:00+00:00")],
    )
    assert user_at(log, "2026-02-15T00:00:00+00:00")["namiml_former_subscriber"] is False
    # The paid entitlement lapses with no event at all: the user is now a former subscriber.
    assert user_at(log, "2026-03-02T00:00:00+00:00")["namiml_former_subscriber"] is True


def test_trial_only_user_is_never_a_former_subscriber():
    log = EventLog()
    log.user_event(
        "u1",
        TRIAL_STARTED,
        "2026-02-01T00:00:00+00:00",
        entitlements=[("p", "s", "2026-02-08T00:00:00+00:00")],
        in_trial_period=True,
    )
    log.user_event("u1", "user.journey.trial.did_not_convert", "2026-02-08T00:00:00+00:00")
    row = user_at(log, "2026-02-09T00:00:00+00:00")
    assert row["namiml_former_subscriber"] is False
    assert row["namiml_in_trial_period"] is False
    assert row["namiml_active_entitlements"] == []


def test_flags_forced_false_without_an_active_entitlement():
    log = EventLog()
    log.user_event(
        "u1",
        "user.subscription.in_grace_period",
        "2026-02-01T00:00:00+00:00",
        entitlements=[("p", "s", "2026-02-05T00:00:00+00:00")],
        in_grace_period=True,
        in_intro_offer_period=True,
        in_trial_period=True,
    )
    active = user_at(log, "2026-02-02T00:00:00+00:00")
    assert (active["namiml_in_grace_period"], active["namiml_in_intro_offer_period"]) == (
        True,
        True,
    )
    assert active["namiml_in_trial_period"] is True
    lapsed = user_at(log, "2026-02-06T00:00:00+00:00")
    assert lapsed["namiml_in_grace_period"] is False
    assert lapsed["namiml_in_intro_offer_period"] is False
    assert lapsed["namiml_in_trial_period"] is False


def test_user_with_only_device_events_has_empty_lists_and_false_flags():
    log = EventLog()
    log.device_event(
        "u1", IMPRESSION, "2026-02-01T00:00:00+00:00", device="d-1", external_id="ext-1"
    )
    row = user_at(log, "2026-02-02T00:00:00+00:00")
    assert row["external_id"] == "ext-1"
    assert row["namiml_active_entitlements"] == [] and row["namiml_active_skus"] == []
    assert row["namiml_device_ids"] == ["d-1"]
    flags = [
        row[name] for name in row if name.startswith("namiml_") and isinstance(row[name], bool)
    ]
    assert flags == [False, False, False, False]


def test_external_id_is_the_latest_non_null_one():
    log = EventLog()
    log.device_event("u1", IMPRESSION, "2026-02-01T00:00:00+00:00", device="d-1")
    assert user_at(log, "2026-02-01T12:00:00+00:00")["external_id"] is None
    log.user_event("u1", PURCHASED, "2026-02-02T00:00:00+00:00", external_id="first")
    log.user_event(
        "u1", "user.subscription.renewed", "2026-02-03T00:00:00+00:00", external_id="second"
    )
    log.device_event("u1", IMPRESSION, "2026-02-04T00:00:00+00:00", device="d-1")
    assert user_at(log, "2026-02-05T00:00:00+00:00")["external_id"] == "second"
    assert user_at(log, "2026-02-02T12:00:00+00:00")["external_id"] == "first"


def test_events_without_a_nami_user_id_make_no_user():
    log = EventLog()
    log.device_event(None, IMPRESSION, "2026-02-01T00:00:00+00:00", device="anonymous-device")
    log.device_event("u1", IMPRESSION, "2026-02-01T00:00:00+00:00", device="d-1")
    snapshot = compute_snapshot(log.frame(), "2026-02-02T00:00:00+00:00")
    assert snapshot["nami_user_id"].tolist() == ["u1"]


def test_output_has_exactly_the_documented_columns_sorted_by_user():
    log = EventLog()
    for user in ("u3", "u1", "u2"):
        log.device_event(user, IMPRESSION, "2026-02-01T00:00:00+00:00", device=f"d-{user}")
    snapshot = compute_snapshot(log.frame(), "2026-02-02T00:00:00+00:00")
    assert snapshot["nami_user_id"].tolist() == ["u1", "u2", "u3"]
    assert list(snapshot.columns) == [
        "nami_user_id",
        "external_id",
        "namiml_active_entitlements",
        "namiml_active_skus",
        "namiml_device_ids",
        "namiml_device_platforms",
        "namiml_former_subscriber",
        "namiml_in_grace_period",
        "namiml_in_trial_period",
        "namiml_in_intro_offer_period",
    ]
