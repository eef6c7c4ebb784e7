"""`nami-pipelines check` run as a user runs it, against the emulator: the printed lines and the
exit code for right, wrong and missing keys, a closed port, a wrong URL and a broken file."""

import socket

import pytest
import yaml

from nami_pipelines.cli import main
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS, MPARTICLE_KEYS


def feed(base_url: str, **options) -> dict:
    return {
        "name": "ios_feed",
        "type": "mparticle",
        "app_id": "app-1",
        "platform": "apple",
        "base_url": base_url,
        "credentials": {"key_env": "IOS_FEED_KEY", "secret_env": "IOS_FEED_SECRET"},
        **options,
    }


def project(endpoint: str, **options) -> dict:
    return {
        "name": "amplitude_prod",
        "type": "amplitude",
        "app_id": "app-1",
        "endpoint": endpoint,
        "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
        **options,
    }


NO_WEBHOOKS = "webhooks: none configured (receive needs a webhooks: list or NAMI_WEBHOOK_SECRET)"


def run_check(
    tmp_path, capsys, *entries: dict, webhooks: list | None = None
) -> tuple[int, list[str], str]:
    """The exit code, the integrations' lines (the webhooks line checked apart) and stderr."""
    path = tmp_path / "integrations.yaml"
    document: dict = {"integrations": list(entries)}
    if webhooks is not None:
        document["webhooks"] = webhooks
    path.write_text(yaml.safe_dump(document))
    code = main(["check", "--file", str(path)])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    if webhooks is None:
        assert NO_WEBHOOKS in lines
        lines.remove(NO_WEBHOOKS)
    return code, lines, captured.err


def assert_no_secret(*texts: str) -> None:
    secrets = [*AMPLITUDE_KEYS.values(), *MPARTICLE_KEYS["ios_feed"], "wrong-secret-5e5e"]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_right_keys_are_accepted_and_nothing_is_sent(
    tmp_path, capsys, fresh_emulator, credentials_env
):
    url = fresh_emulator.url
    code, lines, err = run_check(tmp_path, capsys, feed(f"{url}/v2"), project(f"{url}/2/httpapi"))

    assert code == 0 and err == ""
    assert lines == [
        f"integration 'ios_feed' (mparticle): accepted: HTTP 202 from POST "
        f"{url}/v2/bulkevents: the S2S key and secret are accepted",
        f"integration 'amplitude_prod' (amplitude): accepted: HTTP 400 from POST "
        f"{url}/2/httpapi: the API key is accepted",
    ]
    stats = fresh_emulator.stats()
    assert stats["mparticle"]["requests"] == stats["amplitude"]["requests"] == 1
    assert stats["mparticle"]["events"] == stats["amplitude"]["events"] == 0


def test_wrong_keys_are_refused(tmp_path, capsys, fresh_emulator, credentials_env, monkeypatch):
    monkeypatch.setenv("IOS_FEED_SECRET", "wrong-secret-5e5e")
    monkeypatch.setenv("AMPLITUDE_PROD_API_KEY", "wrong-secret-5e5e")
    url = fresh_emulator.url

    code, lines, err = run_check(tmp_path, capsys, feed(url), project(url))

    assert code == 1
    assert lines == [
        f"integration 'ios_feed' (mparticle): refused: HTTP 403 from POST "
        f"{url}/v2/bulkevents: mParticle refused the S2S key and secret",
        f"integration 'amplitude_prod' (amplitude): refused: HTTP 400 from POST "
        f"{url}/2/httpapi: Amplitude refused the API key",
    ]
    assert err == "nami-pipelines check: 2 destination(s) did not accept the check\n"
    assert_no_secret(*lines, err)


def test_missing_keys_are_named_and_not_asked_for(
    tmp_path, capsys, fresh_emulator, credentials_env, monkeypatch
):
    monkeypatch.delenv("IOS_FEED_KEY")
    monkeypatch.delenv("IOS_FEED_SECRET")
    url = fresh_emulator.url

    code, lines, _ = run_check(tmp_path, capsys, feed(url), project(url))

    assert code == 2
    assert lines[0] == (
        "integration 'ios_feed' (mparticle): not set: environment variable "
        "IOS_FEED_KEY, IOS_FEED_SECRET"
    )
    assert lines[1].startswith("integration 'amplitude_prod' (amplitude): accepted")
    assert fresh_emulator.stats()["mparticle"]["requests"] == 0


def test_a_closed_port_is_unreachable(tmp_path, capsys, credentials_env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    code, lines, _ = run_check(tmp_path, capsys, project(f"http://127.0.0.1:{port}/2/httpapi"))

    assert code == 1
    assert lines == [
        f"integration 'amplitude_prod' (amplitude): unreachable: no answer from POST "
        f"http://127.0.0.1:{port}/2/httpapi: no connection (ConnectionError)"
    ]


def test_a_wrong_url_is_a_wrong_destination(tmp_path, capsys, fresh_emulator, credentials_env):
    url = fresh_emulator.url

    code, lines, _ = run_check(tmp_path, capsys, feed(f"{url}/mparticle/v2"))

    assert code == 1
    assert lines == [
        f"integration 'ios_feed' (mparticle): wrong destination: HTTP 404 from POST "
        f"{url}/mparticle/v2/bulkevents: not mParticle's answer; check pod or base_url"
    ]


def test_every_error_of_a_file_is_printed_at_once(
    tmp_path, capsys, fresh_emulator, credentials_env
):
    url = fresh_emulator.url
    code, lines, _ = run_check(
        tmp_path,
        capsys,
        feed(url, pod="EU1"),
        project(url, events=["user.subscription.renewd"], user_id="email"),
        project(url, name="amplitude_eu", enabled=False),
    )

    assert code == 2
    assert lines[:3] == [
        "configuration: integration 'ios_feed': field 'base_url': give either pod or "
        "base_url, not both",
        "configuration: integration 'amplitude_prod': field 'events': unknown event type(s): "
        "user.subscription.renewd; the sendable types are device.impression, "
        "device.transaction, user.journey.trial.converted, "
        "user.journey.trial.did_not_convert, user.journey.trial.started, "
        "user.subscription.cancelled, user.subscription.expired, "
        "user.subscription.in_grace_period, user.subscription.paused, "
        "user.subscription.purchased, user.subscription.renewal_in_grace_period, "
        "user.subscription.renewed, user.subscription.resumed",
        "configuration: integration 'amplitude_prod': field 'user_id': Input should be "
        "'external_id' or 'nami_user_id'",
    ]
    assert lines[3:] == ["integration 'amplitude_eu' (amplitude): disabled, not checked"]


@pytest.mark.parametrize("content", ["integrations: [\n", "integrations: {a: 1}\n"])
def test_an_unreadable_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "integrations.yaml"
    path.write_text(content)

    code = main(["check", "--file", str(path)])

    out = capsys.readouterr().out.splitlines()
    assert code != 0 and len(out) == 1 and out[0].startswith("configuration: ")


def test_the_webhooks_list_is_checked_as_receive_would_start(
    tmp_path, capsys, fresh_emulator, credentials_env, monkeypatch
):
    monkeypatch.delenv("NAMI_WEBHOOK_SECRET", raising=False)
    url = fresh_emulator.url
    listed = [{"app_id": "app-1", "secret_env": "APP_1_WEBHOOK_SECRET"}]

    code, lines, _ = run_check(tmp_path, capsys, project(url), webhooks=listed)

    assert code == 2
    assert lines[0] == (
        "configuration: webhook app 'app-1': field 'secret_env': environment variable "
        "APP_1_WEBHOOK_SECRET is not set (or choose signature: none)"
    )

    monkeypatch.setenv("APP_1_WEBHOOK_SECRET", "webhook-secret-9c1d")
    listed.append({"app_id": "app-2", "signature": "none"})
    code, lines, _ = run_check(tmp_path, capsys, project(url), webhooks=listed)

    assert code == 0
    assert lines[0] == "webhooks: ready for app-1 (hmac-sha256), app-2 (none)"
    assert all("webhook-secret-9c1d" not in line for line in lines)
