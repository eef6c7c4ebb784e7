"""`nami-pipelines receive` as a user starts it: it refuses to start without a secret, warns
about unsigned apps, and serves webhooks as a process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from nami_pipelines.cli import main
from nami_pipelines.receiver.signatures import sign_hmac_sha256
from nami_pipelines_tests.events.nami_body_samples import renewed_body
from nami_pipelines_tests.receiver.support import ReceiverProcess

INTEGRATION_APP = "app-with-integrations"


def integrations_file(tmp_path, webhooks: list[dict]) -> str:
    document = {
        "integrations": [
            {
                "name": "amplitude_prod",
                "type": "amplitude",
                "app_id": INTEGRATION_APP,
                "endpoint": "standard",
                "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
            }
        ],
        "webhooks": webhooks,
    }
    path = tmp_path / "integrations.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_receive_refuses_to_start_when_a_known_app_has_no_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NAMI_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("NAMI_INTEGRATIONS_FILE", integrations_file(tmp_path, []))
    assert main(["receive", "--port", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"nami-pipelines receive: webhook app '{INTEGRATION_APP}': field 'secret_env': "
        "environment variable NAMI_WEBHOOK_SECRET is not set (or choose signature: none)"
    )


def test_receive_refuses_a_webhooks_entry_with_an_unknown_scheme(tmp_path, monkeypatch, capsys):
    webhooks = [{"app_id": "staging", "signature": "md5"}]
    monkeypatch.setenv("NAMI_INTEGRATIONS_FILE", integrations_file(tmp_path, webhooks))
    assert main(["receive", "--port", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "nami-pipelines receive: webhook app 'staging': field 'signature': 'md5' is not "
        "hmac-sha256 | none"
    )


def test_receive_serves_apps_with_their_own_and_the_shared_secret(tmp_path):
    webhooks = [
        {"app_id": "staging", "secret_env": "STAGING_WEBHOOK_SECRET"},
        {"app_id": "open-app", "signature": "none"},
    ]
    environment = {
        "NAMI_INTEGRATIONS_FILE": integrations_file(tmp_path, webhooks),
        "NAMI_EVENTS_DB_URL": f"sqlite:///{tmp_path / 'events.sqlite'}",
        "NAMI_WEBHOOK_SECRET": "shared-secret-61b0",
        "STAGING_WEBHOOK_SECRET": "staging-secret-2a7c",
    }
    first, second, third = (json.dumps(renewed_body(id=f"e-{n}")).encode() for n in range(3))
    log = tmp_path / "receiver.log"
    with ReceiverProcess(environment, log) as receiver:
        answers = [
            receiver.post(INTEGRATION_APP, first, sign_hmac_sha256(first, "shared-secret-61b0")),
            receiver.post("staging", second, sign_hmac_sha256(second, "staging-secret-2a7c")),
            receiver.post("staging", third, sign_hmac_sha256(third, "shared-secret-61b0")),
            receiver.post("open-app", third, None),
        ]
    assert [a.status_code for a in answers] == [200, 200, 401, 200]
    assert [answers[i].json()["status"] for i in (0, 1, 3)] == ["stored"] * 3
    output = log.read_text()
    assert "webhook app 'open-app': signature: none - bodies are not verified" in output
    assert "webhook refused (401): app 'staging': wrong nami-signature" in output


def test_receive_ends_in_one_line_when_the_database_host_never_answers(tmp_path):
    """A host that takes the connection and never speaks PostgreSQL (a firewall, a hung
    server): the bounded connect makes `receive` stop with one line instead of hanging."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nothing ever answers
        port = silent.getsockname()[1]
        env = {
            **os.environ,
            "NAMI_EVENTS_DB_URL": f"postgresql://postgres@127.0.0.1:{port}/nami",
            "NAMI_INTEGRATIONS_FILE": integrations_file(tmp_path, []),
            "NAMI_WEBHOOK_SECRET": "webhook-secret-4b7e",
        }
        finished = subprocess.run(
            [str(Path(sys.executable).parent / "nami-pipelines"), "receive", "--port", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert finished.returncode == 2
    (line,) = finished.stderr.strip().splitlines()
    assert line.startswith("nami-pipelines receive: the event database is unavailable: ")
    assert "webhook-secret-4b7e" not in finished.stderr + finished.stdout
