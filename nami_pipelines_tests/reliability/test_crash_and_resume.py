"""A delivery killed with SIGKILL at several points, then re-run: nothing lost, and after the
APIs' dedup ids nothing delivered twice; events in flight at the kill are resent with their ids."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger
from nami_pipelines.destinations.outcomes import ACCEPTED
from nami_pipelines.emulators import FaultRule
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines_tests.conftest import (
    MPARTICLE_KEYS,
    integrations_document,
    private_dagster_home,
)

BIN = Path(sys.executable).parent
LEASE_SECONDS = 1.0


def backfill(env: dict[str, str], day: str) -> subprocess.Popen:
    command = [str(BIN / "nami-pipelines"), "backfill", "--integration", "ios_feed"]
    return subprocess.Popen(
        [*command, "--from", day, "--to", day],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_killed_runs_resume_without_loss_or_double_delivery(
    event_store, tmp_path, fresh_emulator, credentials_env
):
    day = datetime.now(UTC).date() - timedelta(days=2)
    source = tmp_path / "events.ndjson"
    write_events_ndjson(source, users=5000, days=1, start=day, seed=12)
    load_ndjson_file(source, event_store)
    document = integrations_document(fresh_emulator.url, PRODUCTION_APP_ID)
    (tmp_path / "integrations.yaml").write_text(yaml.safe_dump(document))
    env = {
        **os.environ,
        **credentials_env,
        "NAMI_EVENTS_DB_URL": event_store.url,
        "NAMI_INTEGRATIONS_FILE": str(tmp_path / "integrations.yaml"),
        "NAMI_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    env["DAGSTER_HOME"] = private_dagster_home(tmp_path)
    fresh_emulator.inject_faults(FaultRule(kind="slow", rate=0.5, delay_seconds=0.15), seed=4)
    credential = MPARTICLE_KEYS["ios_feed"][0]

    def received() -> int:
        stats = fresh_emulator.stats()["mparticle"]["per_credential"]
        return stats.get(credential, {}).get("unique_events", 0)

    kills = 0
    for threshold in (300, 900, 1500):
        process = backfill(env, day.isoformat())
        deadline = time.monotonic() + 120
        while process.poll() is None and received() < threshold and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            process.kill()  # SIGKILL: no cleanup, leases left behind, requests cut mid-flight
            kills += 1
        process.wait()
        time.sleep(LEASE_SECONDS + 0.2)
    assert kills >= 2, "the runs finished before they could be killed: make the day bigger"
    final = backfill(env, day.isoformat())
    _, errors = final.communicate(timeout=300)
    assert final.returncode == 0, errors.decode()[-2000:]

    ledger = DeliveryLedger(event_store.engine)
    entries = ledger.entries("ios_feed")
    expected = len(entries)
    assert expected > 1500
    assert not [row for row in entries if row["status"] == PENDING]
    accepted = {row["event_id"] for row in entries if row["status"] == ACCEPTED}
    records = [r for r in fresh_emulator.received("mparticle") if r["credential"] == credential]
    ids = [r["event"]["data"]["source_message_id"] for r in records]
    assert sorted(ids) == sorted(accepted)  # every accepted event once, after dedup
    stats = fresh_emulator.stats()["mparticle"]["per_credential"][credential]
    assert stats["unique_events"] == len(accepted)
