"""Item 5: end-to-end latency with the Dagster daemon and `new_events_sensor` running on the
embedded default instance (the repository's `dagster.yaml`: SQLite storage, queued runs).

A private DAGSTER_HOME, event database and integrations file (one Amplitude project and one
mParticle feed on a local emulator) are set up in a fresh folder; `dagster-daemon run` is started
in a process group of its own and the sensor is switched on with `dagster sensor start`. After a
warm-up load (the first sensor tick and the first run pay for imports), each measured load waits
a random part of the sensor interval, so loads land at every phase of the sensor's cycle, then
inserts a batch of new events; its latency is the time from the end of the load to the emulator
having accepted every event of the batch on both APIs. p50 and p95 are nearest-rank over the
loads (with few loads, p95 is the slowest one).

With `webhooks`, the same session then measures the front door (`benchmarks.webhook_latency`):
webhooks posted to `nami-pipelines receive` at a steady rate, each timed from its 2xx to the
emulator accepting its event on both APIs.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import (
    AMPLITUDE_KEY,
    CREDENTIAL_VARIABLES,
    MPARTICLE_KEY,
    emulator_settings,
    export_credentials,
    integration_document,
)
from benchmarks.datasets import PRODUCTION_EVENTS_PER_USER_DAY, sqlite_url, yesterday
from benchmarks.delivery import received
from benchmarks.latency_row import SECTION, latency_row
from benchmarks.report import Row, skipped_row
from benchmarks.webhook_latency import day_webhooks, webhook_latency_row
from nami_pipelines.emulators import EmulatorProcess
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson

REPOSITORY = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.25


def _integrations(url: str) -> dict[str, Any]:
    return {
        "integrations": [
            integration_document("amplitude", url, "latency_amplitude"),
            integration_document("mparticle", url, "latency_mparticle"),
        ]
    }


class _Dagster:
    """The daemon in its own process group, and the CLI against the same instance."""

    def __init__(self, folder: Path, environment: dict[str, str]) -> None:
        self.folder = folder
        self.environment = environment
        self.log = folder / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        bin_dir = Path(sys.executable).parent
        self.target = ["-m", "nami_pipelines.definitions", "-d", str(REPOSITORY)]
        self.daemon = str(bin_dir / "dagster-daemon")
        self.cli = str(bin_dir / "dagster")

    def start(self) -> None:
        """The sensor is switched on first, then the daemon started: both would otherwise create
        the new instance's storage at once, and one of them can fail on the other's rows."""
        started = subprocess.run(
            [self.cli, "sensor", "start", "new_events_sensor", *self.target],
            cwd=self.folder,
            env=self.environment,
            check=False,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if started.returncode != 0:
            output = (started.stderr or started.stdout).strip().splitlines()
            raise RuntimeError("dagster sensor start failed: " + " | ".join(output[-6:]))
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.daemon, "run", *self.target],
                cwd=self.folder,
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """SIGTERM to the daemon's group (its code server and run workers), then SIGKILL to
        whatever of the group outlived the daemon (a code server it started while stopping)."""
        process, self.process = self.process, None
        if process is None:
            return
        group = process.pid  # it leads a session of its own, so its group bears its id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""


def _production_events(ndjson: Path) -> int:
    with ndjson.open() as lines:
        return sum(1 for line in lines if json.loads(line)["app_id"] == PRODUCTION_APP_ID)


def _accepted(emulator: EmulatorProcess) -> dict[str, int]:
    stats = emulator.stats()
    return {api: received(stats, api)["unique_events"] for api in ("amplitude", "mparticle")}


def _wait_for(emulator: EmulatorProcess, expected: int, deadline: float) -> float | None:
    """The moment both APIs have `expected` unique events, or None at the deadline."""
    while time.monotonic() < deadline:
        counts = _accepted(emulator)
        if all(count >= expected for count in counts.values()):
            return time.monotonic()
        time.sleep(POLL_SECONDS)
    return None


def latency_rows(
    work: Path,
    *,
    loads: int,
    rows_per_load: int,
    interval: int,
    webhooks: int = 0,
    seed: int = 5,
) -> list[Row]:
    """The load row, then (with `webhooks`) the webhook row, in one daemon session."""
    folder = work / "latency" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copyfile(REPOSITORY / "dagster.yaml", home / "dagster.yaml")
    database = folder / "events.sqlite"
    store = EventStore(sqlite_url(database))
    export_credentials()
    environment = {
        **os.environ,
        **CREDENTIAL_VARIABLES,
        "DAGSTER_HOME": str(home),
        "NAMI_EVENTS_DB_URL": sqlite_url(database),
        "NAMI_INTEGRATIONS_FILE": str(folder / "integrations.yaml"),
        "NAMI_SENSOR_INTERVAL_SECONDS": str(interval),
        "NAMI_DATA_DIR": str(folder / "data"),
    }
    rng = random.Random(seed)
    day = yesterday()
    users = max(5, round(rows_per_load / PRODUCTION_EVENTS_PER_USER_DAY))
    budget = 3 * interval + 120
    samples: list[dict[str, Any]] = []
    dagster = _Dagster(home, environment)
    webhook_row: Row | None = None
    # The webhook row finds each event's acceptance time in the emulator's records.
    settings = replace(emulator_settings(), record_payloads=webhooks > 0)
    with EmulatorProcess(settings) as emulator:
        (folder / "integrations.yaml").write_text(yaml.safe_dump(_integrations(emulator.url)))
        dagster.start()
        try:
            expected = 0
            for number in range(loads + 1):  # load 0 warms up
                if number:
                    time.sleep(rng.uniform(0, interval))
                ndjson = folder / f"load-{number}.ndjson"
                write_events_ndjson(
                    ndjson, users=users, days=1, start=day, seed=seed * 100 + number
                )
                batch = _production_events(ndjson)
                load_ndjson_file(ndjson, store)
                loaded_at = time.monotonic()
                expected += batch
                done = _wait_for(emulator, expected, loaded_at + budget)
                if done is None:
                    return [
                        skipped_row(
                            SECTION,
                            "sensor to emulator",
                            f"load {number} not delivered within {budget}s; daemon log in "
                            f"{dagster.log}: {dagster.log_tail()[-300:]}",
                            error=True,
                        )
                    ]
                if number:
                    samples.append({"load": number, "events": batch, "seconds": done - loaded_at})
            counts = _accepted(emulator)
            if webhooks:
                webhook_row = webhook_latency_row(
                    folder,
                    emulator,
                    environment,
                    webhooks=day_webhooks(webhooks, day, seed * 100 + 99),
                    interval=interval,
                    wait_for=lambda total, seconds: _wait_for(
                        emulator, total, time.monotonic() + seconds
                    ),
                    expected_before=expected,
                    budget=budget + 2 * interval,
                )
        finally:
            dagster.stop()
            store.engine.dispose()
    if webhook_row is None or not webhook_row.error:
        shutil.rmtree(folder, ignore_errors=True)  # kept only when something went wrong
    load_row = latency_row(
        f"load to emulator, sensor every {interval}s ({len(samples)} loads)",
        [sample["seconds"] for sample in samples],
        events=sum(sample["events"] for sample in samples),
        exactly_once=all(count == expected for count in counts.values()),
        details={
            "samples": samples,
            "accepted": counts,
            "expected_per_api": expected,
            "credentials": [AMPLITUDE_KEY, MPARTICLE_KEY],
        },
    )
    return [load_row] if webhook_row is None else [load_row, webhook_row]
