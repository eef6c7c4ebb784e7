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


@pytest.mark.parametrize(
    ("endpoint", "base"),
    [
        ("standard", "https://api2.amplitude.com"),
        ("eu", "https://api.eu.amplitude.com"),
        ("https://api2.amplitude.com/2/httpapi", "https://api2.amplitude.com"),
        ("https://api.eu.amplitude.com/2/httpapi/", "https://api.eu.amplitude.com"),
        ("https://api2.amplitude.com/batch", "https://api2.amplitude.com"),
        ("https://api2.amplitude.com", "https://api2.amplitude.com"),
        ("https://proxy.example.com/amplitude/", "https://proxy.example.com/amplitude"),
    ],
)
def test_amplitude_endpoint_as_users_copy_it(endpoint, base):
    """A name, a base URL or the documented endpoint URL: every API's URL is derived."""
    (project,) = parse_integrations(
        {"integrations": [{**PROJECT, "endpoint": endpoint}]}, check_env=False
    )
    assert project.httpapi_url == f"{base}/2/httpapi"
    assert project.batch_url == f"{base}/batch"
    assert project.identify_url == f"{base}/identify"


@pytest.mark.parametrize(
    ("options", "base"),
    [
        ({}, "https://s2s.mparticle.com"),
        ({"pod": "EU1"}, "https://s2s.eu1.mparticle.com"),
        ({"base_url": "https://s2s.us2.mparticle.com/v2"}, "https://s2s.us2.mparticle.com"),
        ({"base_url": "https://s2s.us2.mparticle.com/v2/"}, "https://s2s.us2.mparticle.com"),
        ({"base_url": "https://s2s.au1.mparticle.com"}, "https://s2s.au1.mparticle.com"),
        ({"base_url": "https://s2s.mparticle.com/v2/bulkevents"}, "https://s2s.mparticle.com"),
        ({"base_url": "http://127.0.0.1:8765//"}, "http://127.0.0.1:8765"),
    ],
)
def test_mparticle_pod_or_base_url_with_or_without_v2(options, base):
    (feed,) = parse_integrations({"integrations": [{**FEED, **options}]}, check_env=False)
    assert feed.bulk_url == f"{base}/v2/bulkevents"
    assert feed.historical_url == f"{base}/v2/bulkevents/historical"


def test_pod_and_base_url_together_are_refused():
    message = error_for([{**FEED, "pod": "US1", "base_url": "https://s2s.mparticle.com/v2"}])
    assert message == (
        "integration 'ios_feed': field 'base_url': give either pod or base_url, not both"
    )


def test_a_url_with_a_query_string_is_refused():
    message = error_for([{**PROJECT, "endpoint": "https://api2.amplitude.com/2/httpapi?x=1"}])
    assert "integration 'amplitude_prod': field 'endpoint'" in message


def test_every_problem_is_reported_at_once(monkeypatch):
    monkeypatch.delenv("PROJECT_KEY", raising=False)
    with pytest.raises(IntegrationConfigError) as raised:
        parse_integrations(
            {
                "integrations": [
                    {**FEED, "pod": "US9", "platform": "ios"},
                    {**PROJECT, "events": ["user.subscription.exploded"]},
                    {**PROJECT, "name": "amplitude_eu"},
                ]
            },
            check_env=True,
        )
    problems = raised.value.problems
    assert [problem.split(":")[0] for problem in problems] == [
        "integration 'ios_feed'",
        "integration 'ios_feed'",
        "integration 'amplitude_prod'",
        "integration 'amplitude_eu'",
    ]
    assert {problem.split(":")[1] for problem in problems[:2]} == {
        " field 'pod'",
        " field 'platform'",
    }
    assert "environment variable PROJECT_KEY is not set" in problems[3]
    # An unknown event type lists the 13 that can be sent.
    assert "user.subscription.exploded" in problems[2]
    assert problems[2].count("device.") == 2 and problems[2].count("user.") == 12


def test_starter_plan_settings_are_amplitude_only():
    (project,) = parse_integrations(
        {
            "integrations": [
                {**PROJECT, "delivery": {"events_per_request": 10, "events_per_second": 1000}}
            ]
        },
        check_env=False,
    )
    assert project.delivery.events_per_request == 10
    assert project.delivery.events_per_second == 1000
    assert "field 'delivery.events_per_request'" in error_for(
        [{**PROJECT, "delivery": {"events_per_request": 2001}}]
    )
    assert "field 'delivery.events_per_request'" in error_for(
        [{**FEED, "delivery": {"events_per_request": 10}}]
    )
