"""The README's main command, end to end, twice: its events go in as signed webhooks through a
receiver it starts, the second run's webhooks are all duplicates and it sends nothing new; what
it leaves lets `scripts/dev ui` start its emulator and deliver with its keys."""

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import yaml

from nami_pipelines.commands.ui import plan_ui
from nami_pipelines.demo_files import DemoFiles, emulator_on_port
from nami_pipelines_tests.conftest import free_port, private_dagster_home
from nami_pipelines_tests.emulators.payloads import amplitude_event, mparticle_batch

BIN = Path(sys.executable).parent
USERS, DAYS, SEED = 120, 3, 7  # the demo's default seed
PRODUCTION_APP = "a7e1c5f0-2d3b-4c6a-9e8f-1b2c3d4e5f60"
STAGING_APP = "5b3f9d21-7c4e-4f8a-a6d0-2e9c1b7a4f35"
WEBHOOK_COLUMNS = ("posted", "stored", "duplicate", "quarantined", "not_sent", "not_acknowledged")


def generated_bodies(folder: Path, app_id: str) -> int:
    """How many bodies `generate --format nami` writes for the app, for the demo's users, days,
    start and seed: what the demo must post to that app's webhook URL."""
    start = (datetime.now(UTC).date() - timedelta(days=DAYS)).isoformat()
    out = folder / f"bodies-{app_id}.ndjson"
    command = [str(BIN / "nami-pipelines"), "generate", "--format", "nami", "--app-id", app_id]
    command += ["--users", str(USERS), "--days", str(DAYS), "--start", start]
    subprocess.run([*command, "--seed", str(SEED), "--out", str(out)], check=True, timeout=120)
    return len(out.read_text().splitlines())


def webhook_rows(output: str) -> dict[str, dict[str, int]]:
    """Per app, the summary's webhook counts."""
    section = output.split("webhooks (this run")[1].split("\n\n")[0]
    rows = {}
    for line in section.splitlines()[2:]:
        app_id, *counts = line.split()
        rows[app_id] = dict(zip(WEBHOOK_COLUMNS, map(int, counts), strict=True))
    return rows


def run_demo(data_dir: Path, port: int) -> str:
    env = {**os.environ, "NAMI_DATA_DIR": str(data_dir)}
    env["DAGSTER_HOME"] = private_dagster_home(data_dir)
    env["NAMI_DEMO_EMULATOR_PORT"] = str(port)
    env.pop("NAMI_EVENTS_DB_URL", None)
    result = subprocess.run(
        [str(BIN / "nami-pipelines"), "demo", "--users", str(USERS), "--days", str(DAYS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def delivery_rows(output: str) -> dict[str, list[int]]:
    section = output.split("deliveries (this run")[1]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\s*(demo_\w+)\s+([\d\s]+)$", line)
        if match:
            rows[match.group(1)] = [int(value) for value in match.group(2).split()]
    return rows


def reason_rows(output: str) -> list[tuple[str, str, int, str]]:
    """(integration, status, events, reason) from the summary's reasons table."""
    if "why events were not accepted" not in output:
        return []
    section = output.split("why events were not accepted (this run)")[1].split("\n\n")[0]
    rows = []
    for line in section.splitlines()[2:]:
        name, status, count, reason = line.split(maxsplit=3)
        rows.append((name, status, int(count), reason))
    return rows


def test_demo_runs_end_to_end_and_the_second_run_sends_nothing(tmp_path):
    port = free_port()
    expected = {app: generated_bodies(tmp_path, app) for app in (PRODUCTION_APP, STAGING_APP)}
    assert expected[PRODUCTION_APP] > 0 and expected[STAGING_APP] > 0
    output = run_demo(tmp_path, port)
    nothing = dict.fromkeys(WEBHOOK_COLUMNS, 0)
    assert webhook_rows(output) == {
        app: {**nothing, "posted": count, "stored": count} for app, count in expected.items()
    }
    total = sum(expected.values())
    assert f"webhooks: {total} posted: {total} stored, 0 duplicate, 0 quarantined (" in output
    first = delivery_rows(output)
    assert set(first) == {"demo_ios_feed", "demo_android_feed", "demo_amplitude"}
    for name, (selected, accepted, rejected, skipped, already, _, recorded, total) in first.items():
        assert selected == accepted + rejected + skipped > 0, name
        assert already == 0 and recorded == accepted == total, name
    reasons = reason_rows(output)
    for name, (_, _, rejected, skipped, *_rest) in first.items():
        of = [row for row in reasons if row[0] == name]
        assert sum(count for _, status, count, _ in of if status == "skipped") == skipped, name
        assert sum(count for _, status, count, _ in of if status == "rejected") == rejected, name
    # The sample data has Android users who never logged in, and the Android feed has no
    # fallback to the Nami user id: those events are skipped, with the reason printed.
    assert first["demo_android_feed"][3] > 0
    the_ui_can_start_the_demo_emulator_and_use_its_keys(tmp_path / "demo", port)
    second_output = run_demo(tmp_path, port)
    assert webhook_rows(second_output) == {
        app: {**nothing, "posted": count, "duplicate": count} for app, count in expected.items()
    }
    second = delivery_rows(second_output)
    for name, (selected, accepted, _, _, already, updates, recorded, total) in second.items():
        assert (accepted, updates, recorded) == (0, 0, 0), name
        assert already == selected and total == first[name][1], name


def the_ui_can_start_the_demo_emulator_and_use_its_keys(folder: Path, port: int) -> None:
    files = DemoFiles(folder)
    assert files.exist()
    plan = plan_ui({}, folder / "a-repository-with-no-integrations-file", files)
    assert plan.demo == files
    assert plan.environment["NAMI_INTEGRATIONS_FILE"] == str(files.integrations)
    document = yaml.safe_load(files.integrations.read_text())
    urls = {item.get("base_url") or item["endpoint"] for item in document["integrations"]}
    assert urls == {f"http://127.0.0.1:{port}"}
    recorded_port, settings = files.emulator_port_and_settings()
    assert recorded_port == port
    keys = plan.environment
    with emulator_on_port(settings, port) as emulator:
        assert emulator.url == f"http://127.0.0.1:{port}"
        for item in document["integrations"]:
            if item["type"] == "mparticle":
                auth = (
                    keys[item["credentials"]["key_env"]],
                    keys[item["credentials"]["secret_env"]],
                )
                answer = requests.post(
                    f"{emulator.url}/v2/events", json=mparticle_batch(), auth=auth
                )
            else:
                api_key = keys[item["credentials"]["api_key_env"]]
                body = {"api_key": api_key, "events": [amplitude_event()]}
                answer = requests.post(f"{emulator.url}/2/httpapi", json=body)
            assert answer.status_code in (200, 202), (item["name"], answer.text)
        wrong = requests.post(
            f"{emulator.url}/2/httpapi",
            json={"api_key": "not-a-demo-key", "events": [amplitude_event()]},
        )
        assert wrong.status_code >= 400
