"""The definitions of the example integrations file, as the UI lists them, against the committed
`expected_definitions.yaml`: a change to an asset key, a kind, a partition, a check, a job, a
schedule or a sensor's default shows as a diff here. After an intended change, rewrite the file
with `python -m nami_pipelines_tests.defs.definitions_snapshot` and commit the diff."""

import difflib

import dagster as dg
import pytest

from nami_pipelines_tests.defs.definitions_snapshot import (
    EXPECTED_FILE,
    definitions_yaml,
    describe_definitions,
    example_definitions,
    example_environment,
)


@pytest.fixture
def example_env(monkeypatch):
    for variable, value in example_environment().items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("NAMI_AUTOMATION", raising=False)
    monkeypatch.delenv("NAMI_PARTITIONS_START_DATE", raising=False)


def test_definitions_match_the_committed_snapshot(example_env):
    actual = definitions_yaml(example_definitions())
    expected = EXPECTED_FILE.read_text()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{EXPECTED_FILE.name} (committed)",
            tofile="definitions (now)",
        )
    )
    assert not diff, (
        "the definitions differ from the committed snapshot; if intended, run "
        "`python -m nami_pipelines_tests.defs.definitions_snapshot` and commit:\n" + diff
    )


def test_the_snapshot_names_one_asset_per_example_integration(example_env):
    # Fixed expectations, so the committed file cannot drift into something wrong unnoticed.
    described = describe_definitions(example_definitions())
    deliveries = {key: asset["kinds"] for key, asset in described["assets"].items() if "/" in key}
    assert deliveries == {
        "deliveries/ios_feed": ["mparticle"],
        "deliveries/android_feed": ["mparticle"],
        "deliveries/amplitude_production": ["amplitude"],
        "deliveries/amplitude_eu": ["amplitude"],
    }
    assert described["assets"]["deliveries/ios_feed"]["pools"] == ["deliveries/ios_feed"]
    assert set(described["assets"]["deliveries/ios_feed"]["checks"]) == {
        "every_selected_event_has_an_outcome",
        "deliveries_not_behind",
    }
    on = {
        name
        for kind in ("schedules", "sensors")
        for name, entry in described[kind].items()
        if entry["default"] == "on"
    }
    assert on == {"delivery_failure_sensor", "nami_events_observation_sensor"}


def test_the_automation_switch_turns_every_schedule_and_sensor_on(example_env, monkeypatch):
    monkeypatch.setenv("NAMI_AUTOMATION", "on")
    repository = example_definitions().get_repository_def()
    assert {sensor.name: sensor.default_status for sensor in repository.sensor_defs} == {
        "delivery_failure_sensor": dg.DefaultSensorStatus.RUNNING,
        "nami_events_observation_sensor": dg.DefaultSensorStatus.RUNNING,
        "new_events_sensor": dg.DefaultSensorStatus.RUNNING,
    }
    assert {schedule.name: schedule.default_status for schedule in repository.schedule_defs} == {
        "attribute_sync_schedule": dg.DefaultScheduleStatus.RUNNING,
        "daily_reconciliation_schedule": dg.DefaultScheduleStatus.RUNNING,
        "daily_snapshots_schedule": dg.DefaultScheduleStatus.RUNNING,
        "deliveries_lag_check_schedule": dg.DefaultScheduleStatus.RUNNING,
    }


def test_a_misspelt_switch_fails_at_load_naming_the_variable(example_env, monkeypatch):
    monkeypatch.setenv("NAMI_AUTOMATION", "yes")
    with pytest.raises(Exception) as raised:
        example_definitions()
    causes = []
    error: BaseException | None = raised.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__
    assert any("NAMI_AUTOMATION must be 'on' or 'off', not 'yes'" in cause for cause in causes)
