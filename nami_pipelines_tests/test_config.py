"""Integrations configuration: every mistake fails at load, naming the integration and field."""

import logging

import pytest

from nami_pipelines.config import IntegrationConfigError, load_integrations, parse_integrations

FEED = {
    "name": "ios_feed",
    "type": "mparticle",
    "app_id": "app-1",
    "platform": "apple",
    "credentials": {"key_env": "FEED_KEY", "secret_env": "FEED_SECRET"},
}
PROJECT = {
    "name": "amplitude_prod",
    "type": "amplitude",
    "app_id": "app-1",
    "credentials": {"api_key_env": "PROJECT_KEY"},
}


def error_for(entries: list[dict], check_env: bool = False) -> str:
    with pytest.raises(IntegrationConfigError) as raised:
        parse_integrations({"integrations": entries}, check_env=check_env)
    return str(raised.value)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({**FEED, "pod": "US9"}, "integration 'ios_feed': field 'pod'"),
        ({**FEED, "events": ["user.subscription.exploded"]}, "field 'events'"),
        ({**FEED, "platform": "ios"}, "field 'platform'"),
        ({**FEED, "base_url": "ftp://example"}, "field 'base_url'"),
        ({**FEED, "customer_id": "email"}, "field 'customer_id'"),
        ({**FEED, "credentials": {"key_env": "FEED_KEY"}}, "field 'credentials.secret_env'"),
        ({**FEED, "colour": "blue"}, "field 'colour'"),
        ({**FEED, "name": "iOS Feed"}, "integration 'iOS Feed': field 'name'"),
        ({**PROJECT, "endpoint": "not a url"}, "integration 'amplitude_prod': field 'endpoint'"),
        ({**PROJECT, "event_renames": {"nope": "x"}}, "field 'event_renames'"),
        ({**PROJECT, "delivery": {"max_in_flight": 0}}, "field 'delivery.max_in_flight'"),
        ({**PROJECT, "type": "segment"}, "field 'type'"),
    ],
)
def test_invalid_fields_name_the_integration_and_field(entry, expected):
    assert expected in error_for([entry])


def test_duplicate_names_are_refused():
    assert "integration 'ios_feed': field 'name'" in error_for([FEED, FEED])


def test_missing_credentials_variable_names_the_variable_not_a_value(monkeypatch):
    monkeypatch.setenv("FEED_KEY", "the-key-value")
    monkeypatch.delenv("FEED_SECRET", raising=False)
    message = error_for([FEED], check_env=True)
    assert message == (
        "integration 'ios_feed': field 'credentials': environment variable FEED_SECRET is not set"
    )


def test_all_platforms_feed_is_allowed_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        (feed,) = parse_integrations(
            {"integrations": [{**FEED, "platform": "all"}]}, check_env=False
        )
    assert feed.platform == "all"
    assert "legacy" in caplog.text and "ios_feed" in caplog.text


def test_defaults_and_endpoints_resolve():
    feed, project = parse_integrations(
        {"integrations": [FEED, {**PROJECT, "endpoint": "eu"}]}, check_env=False
    )
    assert feed.api_base == "https://s2s.mparticle.com" and feed.customer_id == "external_id"
    assert project.api_base == "https://api.eu.amplitude.com"
    assert len(feed.selected_events) == 13


def test_a_named_file_must_exist_and_be_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("NAMI_INTEGRATIONS_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(IntegrationConfigError, match="not found"):
        load_integrations()
    broken = tmp_path / "broken.yaml"
    broken.write_text("integrations: [\n")
    with pytest.raises(IntegrationConfigError, match="not valid YAML"):
        load_integrations(broken)
