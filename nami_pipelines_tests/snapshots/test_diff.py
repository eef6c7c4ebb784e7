"""Attribute updates between two snapshots: who changed, what changed, old and new values."""

from nami_pipelines.snapshots.compute import compute_snapshot
from nami_pipelines.snapshots.diff import diff_snapshots
from nami_pipelines_tests.builders import EventLog


def journeys() -> EventLog:
    log = EventLog()
    log.user_event(
        "trialist",
        "user.journey.trial.started",
        "2026-02-01T00:00:00+00:00",
        entitlements=[("premium", "weekly", "2026-02-08T00:00:00+00:00")],
        in_trial_period=True,
    )
    log.device_event("browser", "device.impression", "2026-02-01T00:00:00+00:00", device="d-b")
    log.device_event("newcomer", "device.impression", "2026-02-09T00:00:00+00:00", device="d-n")
    return log


def test_expiry_and_new_users_are_updates_and_unchanged_users_are_not():
    frame = journeys().frame()
    before = compute_snapshot(frame, "2026-02-02T00:00:00+00:00")
    after = compute_snapshot(frame, "2026-02-10T00:00:00+00:00")
    updates = {update.nami_user_id: update for update in diff_snapshots(before, after)}
    assert set(updates) == {"trialist", "newcomer"}
    trialist = updates["trialist"]
    assert trialist.changed == (
        "namiml_active_entitlements",
        "namiml_active_skus",
        "namiml_in_trial_period",
    )
    assert trialist.old["namiml_active_entitlements"] == ["premium"]
    assert trialist.new["namiml_active_entitlements"] == []
    assert trialist.new["namiml_in_trial_period"] is False
    newcomer = updates["newcomer"]
    assert newcomer.old is None
    assert len(newcomer.changed) == 8
    assert newcomer.new["namiml_device_ids"] == ["d-n"]


def test_identical_snapshots_have_no_updates():
    snapshot = compute_snapshot(journeys().frame(), "2026-02-10T00:00:00+00:00")
    assert diff_snapshots(snapshot, snapshot) == []
