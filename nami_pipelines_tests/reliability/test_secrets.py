"""After full runs with failures, no API key, S2S key or secret appears anywhere a user or an
attacker could read: run logs, event log storage, asset metadata, exceptions, the event database,
or the URLs the senders call; nor does a webhook secret in the receiver's logs and answers."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import yaml

from nami_pipelines.config import parse_integrations
from nami_pipelines.defs.delivery.assets import RESEND_TAG, deliveries_key
from nami_pipelines.defs.delivery.definitions import build_delivery_definitions
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.emulators import FaultRule
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.receiver.signatures import sign_hmac_sha256
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines_tests.conftest import integrations_document
from nami_pipelines_tests.events.nami_body_samples import renewed_body
from nami_pipelines_tests.receiver.support import ReceiverProcess

REFUSED_KEY = "refused-amplitude-key-31c9"


def every_file_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def test_no_secret_anywhere_after_runs_with_failures(
    event_store, tmp_path, fresh_emulator, credentials_env, monkeypatch
):
    day = datetime.now(UTC).date() - timedelta(days=2)
    write_events_ndjson(tmp_path / "e.ndjson", users=200, days=1, start=day, seed=5)
    load_ndjson_file(tmp_path / "e.ndjson", event_store)
    integrations = parse_integrations(integrations_document(fresh_emulator.url, PRODUCTION_APP_ID))
    resource = EventStoreResource(database_url=event_store.url)
    definitions = dg.Definitions.merge(
        build_delivery_definitions(integrations),
        dg.Definitions(resources={"event_store": resource}),
    )
    deliveries = {i.name: definitions.get_assets_def(deliveries_key(i.name)) for i in integrations}
    home = tmp_path / "dagster_home"
    home.mkdir()
    fresh_emulator.inject_faults(
        FaultRule(kind="server_error", rate=0.3, status=500),
        FaultRule(kind="drop", rate=0.1),
        FaultRule(kind="throttle", rate=0.1, retry_after=0),
        seed=9,
    )
    metadata_text = []
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        for integration in integrations:
            result = dg.materialize(
                [deliveries[integration.name]],
                partition_key=day.isoformat(),
                instance=instance,
                resources={"event_store": resource},
            )
            assert result.success
            for event in result.get_asset_materialization_events():
                metadata_text.append(repr(event.materialization.metadata))
        monkeypatch.setenv("AMPLITUDE_PROD_API_KEY", REFUSED_KEY)
        failed = dg.materialize(
            [deliveries["amplitude_prod"]],
            partition_key=day.isoformat(),
            instance=instance,
            resources={"event_store": resource},
            raise_on_error=False,
            tags={RESEND_TAG: "true"},  # send again, so the refused key is really used
        )
        assert not failed.success
        logs = "\n".join(
            str(record.dagster_event or record.user_message)
            for run in instance.get_runs()
            for record in instance.all_logs(run.run_id)
        )
    secrets = [*credentials_env.values(), REFUSED_KEY]
    assert "refused the API key" in logs
    haystacks = {"run logs": logs, "asset metadata": "\n".join(metadata_text)}
    for path in every_file_under(home):
        haystacks[str(path)] = path.read_bytes().decode("latin-1")
    database = Path(event_store.url.split("///", 1)[1]) if event_store.dialect == "sqlite" else None
    if database is not None:
        for path in database.parent.glob(database.name + "*"):
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"{secret[:4]}... found in {where}"
    for integration in integrations:
        base = getattr(integration, "base_url", None) or integration.api_base
        assert not any(secret in base for secret in secrets)


def test_no_webhook_secret_in_the_receivers_logs_answers_or_database(tmp_path):
    secret, other_secret, db_password = "whsec-own-7b21e0", "whsec-shared-c93d4a", "dbpass-5e8f1c"
    integrations = tmp_path / "integrations.yaml"
    integrations.write_text(
        yaml.safe_dump(
            {"webhooks": [{"app_id": "prod", "secret_env": "PROD_WEBHOOK_SECRET"}, {"app_id": "x"}]}
        )
    )
    database = tmp_path / "events.sqlite"
    environment = {
        "NAMI_INTEGRATIONS_FILE": str(integrations),
        "NAMI_EVENTS_DB_URL": f"sqlite:///{database}",
        "PROD_WEBHOOK_SECRET": secret,
        "NAMI_WEBHOOK_SECRET": other_secret,
    }
    good = json.dumps(renewed_body()).encode()
    log = tmp_path / "receiver.log"
    with ReceiverProcess(environment, log) as receiver:
        answers = [
            receiver.post("prod", good, None),
            receiver.post("prod", good, sign_hmac_sha256(good, other_secret)),
            receiver.post("prod", good, secret),  # the secret itself sent as the signature
            receiver.post("nope", good, sign_hmac_sha256(good, secret)),
            receiver.post("prod", b"{bad", sign_hmac_sha256(b"{bad", secret)),
            receiver.post("prod", good, sign_hmac_sha256(good, secret)),
        ]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 404, 200, 200]
    unreachable = subprocess.run(
        [sys.executable, "-m", "nami_pipelines.cli", "receive", "--port", "1"],
        env={
            **os.environ,
            **environment,
            "NAMI_EVENTS_DB_URL": f"postgresql://nami:{db_password}@127.0.0.1:1/events",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode != 0
    assert "the event database is unavailable" in unreachable.stderr
    haystacks = {
        "receiver log": log.read_text(),
        "answers": "\n".join(answer.text for answer in answers),
        "failed start": unreachable.stdout + unreachable.stderr,
    }
    for path in database.parent.glob(database.name + "*"):
        haystacks[str(path)] = path.read_bytes().decode("latin-1")
    assert "wrong nami-signature" in haystacks["receiver log"]
    for where, text in haystacks.items():
        for hidden in (secret, other_secret, db_password):
            assert hidden not in text, f"{hidden[:6]}... found in {where}"
