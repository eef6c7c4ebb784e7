"""A day sent after it ended: each touched user's closing profile update counts the events
between the day's end and now, whether that window is empty, read once, or read per chunk."""

from datetime import UTC, datetime, timedelta

import pytest

from nami_pipelines.delivery import later
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import PRODUCTION_APP_ID
from nami_pipelines_tests.builders import EventLog
from nami_pipelines_tests.delivery.test_deliver_day import deliver_from, demo_integration

FAR = "2099-01-01T00:00:00+00:00"


@pytest.fixture
def trial_then_lapse(event_store, tmp_path):
    """Two users start a trial on the day; the next day one of them lets it lapse (nothing
    active), the other buys a second product."""
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    log = EventLog()
    for user in ("lapsing-user", "buying-user"):
        log.user_event(
            user,
            "user.journey.trial.started",
            f"{day}T08:00:00+00:00",
            entitlements=[("premium", "premium_weekly", FAR)],
            in_trial_period=True,
        )
    log.user_event(
        "lapsing-user",
        "user.journey.trial.did_not_convert",
        f"{day}T23:30:00+00:00",
        entitlements=[("premium", "premium_weekly", FAR)],
        in_trial_period=True,
    )
    log.user_event(
        "lapsing-user", "user.subscription.expired", f"{day + timedelta(days=1)}T09:00:00+00:00"
    )
    log.user_event(
        "buying-user",
        "user.subscription.purchased",
        f"{day + timedelta(days=1)}T10:00:00+00:00",
        entitlements=[("premium", "premium_weekly", FAR), ("extras", "extras_monthly", FAR)],
    )
    for record in log.records:
        record["app_id"] = PRODUCTION_APP_ID
    (tmp_path / "journeys.ndjson").write_text(log.ndjson())
    load_ndjson_file(tmp_path / "journeys.ndjson", event_store)
    return day


def _send_day(event_store, emulator, day, now) -> dict[str, dict]:
    deliver_from(event_store, demo_integration(emulator, "ios_feed"), day, now=now)
    return {p["user"]: p["attributes"] for p in emulator.profiles("mparticle")}


@pytest.mark.parametrize("read_at_once", [later.READ_AT_ONCE_EVENTS, 0], ids=["once", "per-chunk"])
def test_the_closing_update_counts_the_events_after_the_day(
    event_store, trial_then_lapse, fresh_emulator, credentials_env, monkeypatch, read_at_once
):
    monkeypatch.setattr(later, "READ_AT_ONCE_EVENTS", read_at_once)
    profiles = _send_day(event_store, fresh_emulator, trial_then_lapse, datetime.now(UTC))
    assert profiles["lapsing-user"]["namiml_active_entitlements"] == []
    assert profiles["lapsing-user"]["namiml_in_trial_period"] == "false"
    assert profiles["buying-user"]["namiml_active_entitlements"] == ["extras", "premium"]
    assert profiles["buying-user"]["namiml_active_skus"] == ["extras_monthly", "premium_weekly"]


def test_with_nothing_after_the_day_the_update_is_the_days_own(
    event_store, trial_then_lapse, fresh_emulator, credentials_env
):
    # "Now" is before the next day's events: the window after the day holds none.
    now = datetime.combine(trial_then_lapse + timedelta(days=1), datetime.min.time(), UTC)
    profiles = _send_day(event_store, fresh_emulator, trial_then_lapse, now + timedelta(hours=8))
    assert profiles["lapsing-user"]["namiml_active_entitlements"] == ["premium"]
    assert profiles["lapsing-user"]["namiml_in_trial_period"] == "true"
    assert profiles["buying-user"]["namiml_active_skus"] == ["premium_weekly"]
