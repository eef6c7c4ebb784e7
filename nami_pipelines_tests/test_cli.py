"""The command line as a user runs it: output lines, exit codes, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nami_pipelines.cli import main
from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES
from nami_pipelines_tests.conftest import private_dagster_home
from nami_pipelines_tests.fixtures import SAMPLE_EVENTS

SAMPLE = SAMPLE_EVENTS


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NAMI_EVENTS_DB_URL", database_url)
    return database_url


def test_load_prints_counts_and_is_idempotent(cli_database, capsys):
    assert main(["load", str(SAMPLE)]) == 0
    assert capsys.readouterr().out.strip() == "loaded 15, duplicates 0, quarantined 0"
    assert main(["load", str(SAMPLE)]) == 0
    assert capsys.readouterr().out.strip() == "loaded 0, duplicates 15, quarantined 0"


def test_snapshot_prints_one_sorted_json_object_per_user(cli_database, capsys):
    main(["load", str(SAMPLE)])
    capsys.readouterr()
    assert main(["snapshot", "--at", "2026-02-15T00:00:00Z"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["nami_user_id"] for line in lines] == sorted(
        line["nami_user_id"] for line in lines
    )
    assert len(lines) == 3
    for line in lines:
        assert list(line) == ["nami_user_id", "external_id", *ATTRIBUTE_NAMES]
    google_user = next(line for line in lines if line["external_id"] is None)
    assert google_user["namiml_active_entitlements"] == []  # paused on 2026-02-14
    assert google_user["namiml_former_subscriber"] is True


def test_generate_writes_deterministic_ndjson(tmp_path, capsys):
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    arguments = ["--users", "20", "--days", "5", "--start", "2026-02-01", "--seed", "3"]
    assert main(["generate", *arguments, "--out", str(first)]) == 0
    assert main(["generate", *arguments, "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    count = len(first.read_text().splitlines())
    assert f"wrote {count} events for 20 users" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["load", "/no/such/file.ndjson"], "no such file: /no/such/file.ndjson"),
        (["snapshot", "--at", "2026-02-01T00:00:00"], "has no UTC offset"),
        (
            ["generate", "--users", "0", "--days", "1", "--start", "2026-02-01", "--out", "x"],
            "--users and --days must be at least 1",
        ),
    ],
)
def test_bad_input_is_one_line_and_non_zero(arguments, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NAMI_EVENTS_DB_URL", f"sqlite:///{tmp_path / 'e.sqlite'}")
    assert main(arguments) != 0
    error = capsys.readouterr().err.strip()
    assert message in error
    assert len(error.splitlines()) == 1


@pytest.fixture
def configured(cli_database, tmp_path, monkeypatch, fresh_emulator, credentials_env):
    """Recent sample events loaded and the test integrations written to an integrations file."""
    from datetime import UTC, datetime, timedelta

    import yaml

    from nami_pipelines.samples import PRODUCTION_APP_ID
    from nami_pipelines_tests.conftest import integrations_document

    start = datetime.now(UTC).date() - timedelta(days=3)
    events = tmp_path / "events.ndjson"
    assert (
        main(
            [
                "generate",
                "--users",
                "40",
                "--days",
                "2",
                "--start",
                str(start),
                "--out",
                str(events),
            ]
        )
        == 0
    )
    assert main(["load", str(events)]) == 0
    integrations = tmp_path / "integrations.yaml"
    integrations.write_text(
        yaml.safe_dump(integrations_document(fresh_emulator.url, PRODUCTION_APP_ID))
    )
    monkeypatch.setenv("NAMI_INTEGRATIONS_FILE", str(integrations))
    return {"days": [start, start + timedelta(days=1)], "emulator": fresh_emulator}


def test_preview_prints_request_bodies_and_sends_and_writes_nothing(configured, capsys):
    from nami_pipelines.delivery.ledger import DeliveryLedger
    from nami_pipelines.events.store import EventStore
    from nami_pipelines.settings import events_db_url
    from nami_pipelines_tests.conftest import AMPLITUDE_KEYS

    capsys.readouterr()
    day = str(configured["days"][0])
    assert main(["preview", "--integration", "amplitude_prod", "--date", day]) == 0
    lines = capsys.readouterr().out.splitlines()
    bodies = [json.loads(line) for line in lines]
    event_bodies = [body for body in bodies if "events" in body]
    assert event_bodies and all(b["api_key"] == "${AMPLITUDE_PROD_API_KEY}" for b in bodies)
    assert AMPLITUDE_KEYS["amplitude_prod"] not in "\n".join(lines)
    assert sum(len(body["events"]) for body in event_bodies) > 10
    assert configured["emulator"].stats()["amplitude"]["requests"] == 0
    assert DeliveryLedger(EventStore(events_db_url()).engine).entries("amplitude_prod") == []


def test_backfill_delivers_a_range_and_a_second_backfill_sends_nothing(
    configured, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("DAGSTER_HOME", private_dagster_home(tmp_path))
    first_day, last_day = (str(day) for day in configured["days"])
    arguments = [
        "backfill",
        "--integration",
        "ios_feed",
        "amplitude_prod",
        "--from",
        first_day,
        "--to",
        last_day,
    ]
    capsys.readouterr()
    assert main(arguments) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("accepted" in line for line in lines)
    stats = configured["emulator"].stats()
    sent = stats["mparticle"]["unique_events"] + stats["amplitude"]["unique_events"]
    assert sent > 0
    assert main(arguments) == 0
    assert all("accepted 0," in line for line in capsys.readouterr().out.splitlines())
    again = configured["emulator"].stats()
    assert again["mparticle"]["unique_events"] + again["amplitude"]["unique_events"] == sent


def test_unknown_integration_is_a_one_line_error(configured, capsys):
    assert main(["preview", "--integration", "nope", "--date", "2026-02-01"]) != 0
    error = capsys.readouterr().err.strip()
    assert "unknown integration(s) nope" in error and len(error.splitlines()) == 1


def run_cli(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command in its own process: its exit code and everything it printed."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "nami-pipelines"), *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def cli_env(configured, tmp_path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": private_dagster_home(tmp_path)}


def _backfill(day, *names: str) -> list[str]:
    return ["backfill", "--integration", *names, "--from", str(day), "--to", str(day)]


def test_a_day_outside_the_partitions_is_one_line(cli_env):
    result = run_cli(*_backfill("2025-06-01", "ios_feed"), env=cli_env)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("nami-pipelines backfill: 2025-06-01 is outside the daily partitions")
    assert "NAMI_PARTITIONS_START_DATE" in line


def test_a_refused_key_is_one_line_with_the_runs_reason_and_debug_adds_the_trace(
    configured, cli_env
):
    env = {**cli_env, "IOS_FEED_KEY": "a-key-the-emulator-never-issued"}
    day = configured["days"][0]
    result = run_cli(*_backfill(day, "ios_feed"), env=env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"nami-pipelines backfill: ios_feed {day}: integration 'ios_feed'")
    assert "401" in line or "403" in line
    assert "Dagster run" not in line.split("(run ")[0]
    assert "a-key-the-emulator-never-issued" not in result.stdout + result.stderr
    debug = run_cli("--debug", *_backfill(day, "ios_feed"), env=env)
    assert debug.returncode == 1
    assert debug.stderr.splitlines()[0].startswith("nami-pipelines backfill: ios_feed")
    assert "Stack Trace" in debug.stderr and len(debug.stderr.splitlines()) > 5


def test_an_unreachable_destination_leaves_events_pending_and_exits_non_zero(
    configured, cli_env, tmp_path
):
    from nami_pipelines.samples import PRODUCTION_APP_ID
    from nami_pipelines_tests.conftest import free_port, integrations_document

    document = integrations_document(f"http://127.0.0.1:{free_port()}", PRODUCTION_APP_ID)
    (amplitude,) = [item for item in document["integrations"] if item["type"] == "amplitude"]
    amplitude["delivery"] = {"max_attempts": 1}
    unreachable = tmp_path / "unreachable.yaml"
    unreachable.write_text(yaml.safe_dump({"integrations": [amplitude]}))
    env = {**cli_env, "NAMI_INTEGRATIONS_FILE": str(unreachable)}
    day = configured["days"][0]
    result = run_cli(*_backfill(day, "amplitude_prod"), env=env)
    assert result.returncode == 1
    (summary,) = result.stdout.splitlines()
    selected = int(summary.split("selected ")[1].split(",")[0])
    assert selected > 0 and "accepted 0," in summary
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"amplitude_prod: {selected} selected events left pending (top reason: ")
    assert "Traceback" not in result.stderr


def test_preview_without_credentials_prints_the_key_variable(
    configured, credentials_env, monkeypatch, capsys
):
    for variable in credentials_env:
        monkeypatch.delenv(variable)
    capsys.readouterr()
    day = str(configured["days"][0])
    assert main(["preview", "--integration", "amplitude_prod", "--date", day]) == 0
    bodies = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert bodies and all(body["api_key"] == "${AMPLITUDE_PROD_API_KEY}" for body in bodies)
    assert main(["preview", "--integration", "ios_feed", "--date", day]) == 0
    batches = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert batches and all(batch for batch in batches)
