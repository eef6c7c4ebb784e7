"""Concurrency on PostgreSQL: overlapping delivery runs, and loads racing the sensor's cursor."""

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger
from nami_pipelines.destinations.outcomes import ACCEPTED
from nami_pipelines.emulators import FaultRule
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID, generate_events
from nami_pipelines_tests.conftest import (
    MPARTICLE_KEYS,
    integrations_document,
    private_dagster_home,
)

BIN = Path(sys.executable).parent


def write_events(path: Path, users: int, start, seed: int) -> Path:
    records = generate_events(users=users, days=1, start=start, seed=seed)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.mark.postgres
@pytest.mark.parametrize("runs", [2, 4])
def test_overlapping_runs_never_send_an_accepted_event_twice(
    runs, postgres_url, tmp_path, fresh_emulator, credentials_env
):
    store = EventStore(postgres_url)
    day = datetime.now(UTC).date() - timedelta(days=2)
    load_ndjson_file(write_events(tmp_path / "e.ndjson", 3000, day, seed=runs), store)
    (tmp_path / "integrations.yaml").write_text(
        yaml.safe_dump(integrations_document(fresh_emulator.url, PRODUCTION_APP_ID))
    )
    fresh_emulator.inject_faults(FaultRule(kind="slow", rate=0.3, delay_seconds=0.05), seed=1)
    env = {
        **os.environ,
        **credentials_env,
        "NAMI_EVENTS_DB_URL": postgres_url,
        "NAMI_INTEGRATIONS_FILE": str(tmp_path / "integrations.yaml"),
    }
    env["DAGSTER_HOME"] = private_dagster_home(tmp_path)
    command = [str(BIN / "nami-pipelines"), "backfill", "--integration", "ios_feed"]
    command += ["--from", day.isoformat(), "--to", day.isoformat()]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(runs)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0] * runs, [o[1][-800:] for o in outputs]
    credential = MPARTICLE_KEYS["ios_feed"][0]
    stats = fresh_emulator.stats()["mparticle"]["per_credential"][credential]
    assert stats["duplicate_events"] == 0
    entries = DeliveryLedger(store.engine).entries("ios_feed")
    accepted = [row for row in entries if row["status"] == ACCEPTED]
    assert stats["unique_events"] == len(accepted) > 500
    assert not [row for row in entries if row["status"] == PENDING]
    # Each event went out in exactly one run: the runs' accepted counts add up to the total.
    counts = [
        sum(int(line.split("accepted ")[1].split(",")[0]) for line in out.decode().splitlines())
        for out, _ in outputs
    ]
    assert sum(counts) == len(accepted)


@pytest.mark.postgres
def test_loads_racing_the_sensor_cursor_are_each_seen_exactly_once(postgres_url, tmp_path):
    store = EventStore(postgres_url)
    start = datetime.now(UTC).date() - timedelta(days=1)
    files = [write_events(tmp_path / f"part{n}.ndjson", 150, start, seed=100 + n) for n in range(8)]
    expected = sum(len(path.read_text().splitlines()) for path in files)
    env = {**os.environ, "NAMI_EVENTS_DB_URL": postgres_url}

    def load_in_parallel() -> None:
        loaders = [
            subprocess.Popen(
                [str(BIN / "nami-pipelines"), "load", str(path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for path in files
        ]
        for loader in loaders:
            assert loader.wait(timeout=120) == 0

    loading = threading.Thread(target=load_in_parallel)
    loading.start()
    cursor, seen = 0, 0
    while loading.is_alive() or cursor < store.max_loaded_seq():
        arrived, cursor = store.loaded_since(cursor, limit=137)
        seen += int(arrived["events"].sum()) if len(arrived) else 0
    loading.join()
    assert store.count_events() == expected
    assert seen == expected
