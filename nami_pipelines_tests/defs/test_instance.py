"""Command-line runs record in the instance `scripts/dev ui` opens (the repository's
`dagster.yaml`) even with no `DAGSTER_HOME`, so they show in the UI and the failure sensor sees
them. Run against a copy of the repository, so nothing lands in the real one's `data/`."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import yaml

from nami_pipelines.config import parse_integrations
from nami_pipelines.defs.delivery.assets import INTEGRATION_TAG, deliveries_key
from nami_pipelines.defs.delivery.definitions import build_delivery_definitions
from nami_pipelines.defs.instance import instance_at
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines_tests.conftest import integrations_document

REPOSITORY = Path(__file__).resolve().parents[2]


def test_cli_runs_without_dagster_home_land_in_the_repositorys_instance(
    tmp_path, fresh_emulator, credentials_env
):
    copy = tmp_path / "repository"
    shutil.copytree(
        REPOSITORY / "nami_pipelines",
        copy / "nami_pipelines",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copyfile(REPOSITORY / "dagster.yaml", copy / "dagster.yaml")
    database = f"sqlite:///{tmp_path / 'events.sqlite'}"
    day = datetime.now(UTC).date() - timedelta(days=2)
    events = tmp_path / "events.ndjson"
    write_events_ndjson(events, users=20, days=1, start=day, seed=3)
    load_ndjson_file(events, EventStore(database))
    integrations = tmp_path / "integrations.yaml"
    integrations.write_text(
        yaml.safe_dump(integrations_document(fresh_emulator.url, PRODUCTION_APP_ID))
    )
    env = {
        **os.environ,
        **credentials_env,
        "PYTHONPATH": str(copy),
        "NAMI_EVENTS_DB_URL": database,
        "NAMI_INTEGRATIONS_FILE": str(integrations),
        "IOS_FEED_KEY": "refused-key",
    }
    env.pop("DAGSTER_HOME", None)
    env.pop("NAMI_DATA_DIR", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def backfill(name: str) -> int:
        command = [sys.executable, "-m", "nami_pipelines.cli", "backfill", "--integration", name]
        command += ["--from", str(day), "--to", str(day)]
        return subprocess.run(command, env=env, cwd=elsewhere, timeout=300, check=False).returncode

    assert backfill("amplitude_prod") == 0
    assert backfill("ios_feed") == 1
    assert not (elsewhere / "data").exists()
    # What the UI opens: DAGSTER_HOME is the repository (copy), Dagster run from there.
    instance = instance_at(copy)
    assert (copy / "data" / "dagster").is_dir()
    runs = {run.tags[INTEGRATION_TAG]: run for run in instance.get_runs()}
    assert set(runs) == {"amplitude_prod", "ios_feed"}
    assert runs["amplitude_prod"].status == dg.DagsterRunStatus.SUCCESS
    failed = runs["ios_feed"]
    assert failed.status == dg.DagsterRunStatus.FAILURE

    failure_event = next(
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(failed.run_id).records
        if record.event_log_entry.dagster_event is not None
        and record.event_log_entry.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE
    )
    context = dg.build_run_status_sensor_context(
        sensor_name="delivery_failure_sensor",
        dagster_instance=instance,
        dagster_run=failed,
        dagster_event=failure_event,
    ).for_run_failure()
    definitions = dg.Definitions.merge(
        build_delivery_definitions(
            parse_integrations(integrations_document(fresh_emulator.url, PRODUCTION_APP_ID))
        ),
        dg.Definitions(resources={"event_store": EventStoreResource(database_url=database)}),
    )
    failure_sensor = definitions.get_repository_def().get_sensor_def("delivery_failure_sensor")
    failure_sensor(context)
    observation = instance.fetch_observations(deliveries_key("ios_feed"), limit=1).records[0]
    metadata = observation.asset_observation.metadata
    assert metadata["failed_integration"].value == "ios_feed"
    assert "ios_feed" in metadata["failure"].value
    assert "refused-key" not in metadata["failure"].value
