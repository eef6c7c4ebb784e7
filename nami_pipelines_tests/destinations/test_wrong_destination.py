"""Only an API's verdict dead-letters an event. A wrong URL, a 405, a redirect or a portal's page
stops the integration with one line (integration, URL, status; no secret) and leaves its events
pending. Real HTTP against the emulator and a real ledger."""

import pytest

from nami_pipelines.destinations.outcomes import RequestRefused, WrongDestination
from nami_pipelines.emulators import FaultRule
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS, MPARTICLE_KEYS
from nami_pipelines_tests.destinations.delivery_world import (
    amplitude_entry,
    delivery_world,
    mparticle_entry,
)

PORTAL = "<!DOCTYPE html><html><body>Accept the terms to use the Wi-Fi</body></html>"
SECRETS = [*AMPLITUDE_KEYS.values(), *MPARTICLE_KEYS["ios_feed"]]


@pytest.fixture
def world(event_store, fresh_emulator, credentials_env, tmp_path):
    return delivery_world(event_store, fresh_emulator, tmp_path)


def assert_stopped_and_pending(world, name: str, raised, *expected: str) -> None:
    message = str(raised.value)
    assert "\n" not in message
    for part in (f"integration '{name}'", *expected):
        assert part in message
    for secret in SECRETS:
        assert secret not in message
    statuses = world.statuses(name)
    assert statuses.get("pending", 0) > 0
    assert "accepted" not in statuses and "rejected" not in statuses
    stats = world.emulator.stats()
    assert stats["amplitude"]["unique_events"] == stats["mparticle"]["unique_events"] == 0


def test_a_wrong_amplitude_path_is_a_404_that_stops_and_rejects_nothing(world):
    """A path pasted twice gets a real 404 from the emulator's server."""
    integration = world.integration(amplitude_entry(f"{world.emulator.url}/2/httpapi/2/httpapi"))

    with pytest.raises(WrongDestination) as raised:
        world.deliver(integration)

    url = f"{world.emulator.url}/2/httpapi/2/httpapi"
    assert_stopped_and_pending(world, "amplitude_prod", raised, "HTTP 404", url)


def test_a_wrong_mparticle_base_url_is_a_404_that_stops(world):
    integration = world.integration(mparticle_entry(f"{world.emulator.url}/api/v2"))

    with pytest.raises(WrongDestination) as raised:
        world.deliver(integration)

    url = f"{world.emulator.url}/api/v2/bulkevents"
    assert_stopped_and_pending(world, "ios_feed", raised, "HTTP 404", url)


def test_a_405_stops_the_integration(world):
    world.emulator.inject_faults(FaultRule("answer", status=405, body="Method Not Allowed"))
    integration = world.integration(mparticle_entry(world.emulator.url))

    with pytest.raises(WrongDestination) as raised:
        world.deliver(integration)

    url = f"{world.emulator.url}/v2/bulkevents"
    assert_stopped_and_pending(world, "ios_feed", raised, "HTTP 405", url)


def test_a_redirect_is_not_followed_and_stops_the_integration(world):
    target = f"{world.emulator.url}/2/httpapi"  # following it would deliver: it must not
    world.emulator.inject_faults(
        FaultRule("answer", status=307, location=target, api="amplitude", count=1)
    )
    integration = world.integration(amplitude_entry(world.emulator.url))

    with pytest.raises(WrongDestination) as raised:
        world.deliver(integration)

    assert_stopped_and_pending(world, "amplitude_prod", raised, "HTTP 307", target)


@pytest.mark.parametrize("api", ["amplitude", "mparticle"])
def test_a_portal_page_with_200_is_not_an_acceptance(world, api):
    world.emulator.inject_faults(
        FaultRule("answer", status=200, body=PORTAL, content_type="text/html", api=api)
    )
    entry = amplitude_entry if api == "amplitude" else mparticle_entry
    integration = world.integration(entry(world.emulator.url))

    with pytest.raises(WrongDestination) as raised:
        world.deliver(integration)

    assert_stopped_and_pending(world, integration.name, raised, "HTTP 200", "HTML page")


def test_mparticle_400_with_a_body_still_dead_letters(world):
    verdict = '{"errors":[{"code":"BAD_REQUEST","message":"batch rejected: invalid batch"}]}'
    world.emulator.inject_faults(
        FaultRule("answer", status=400, body=verdict, content_type="application/json")
    )
    integration = world.integration(mparticle_entry(world.emulator.url))

    report = world.deliver(integration)

    rows = world.ledger.entries("ios_feed")
    rejected = [row for row in rows if row["status"] == "rejected"]
    assert report.rejected == len(rejected) > 0
    assert all("batch rejected: invalid batch" in row["reason"] for row in rejected)
    assert "pending" not in world.statuses("ios_feed")


def test_amplitude_index_list_400_dead_letters_exactly_the_listed_events(world):
    world.emulator.inject_faults(FaultRule("partial_reject", items=2, api="amplitude", count=1))
    integration = world.integration(amplitude_entry(world.emulator.url))

    report = world.deliver(integration)

    statuses = world.statuses("amplitude_prod")
    assert statuses["rejected"] == report.rejected == 2
    assert statuses["accepted"] == report.accepted > 0
    assert "pending" not in statuses
    rejected = [r for r in world.ledger.entries("amplitude_prod") if r["status"] == "rejected"]
    assert all("events_with_invalid_fields" in row["reason"] for row in rejected)


def test_an_amplitude_400_naming_no_event_stops_and_rejects_nothing(world):
    """A 400 without index lists refuses the request as a whole (here an option), so it is no
    verdict on any event: the integration stops and every event stays pending."""
    refusal = '{"code":400,"error":"Invalid options: min_id_length"}'
    world.emulator.inject_faults(
        FaultRule("answer", status=400, body=refusal, content_type="application/json")
    )
    integration = world.integration(amplitude_entry(world.emulator.url))

    with pytest.raises(RequestRefused) as raised:
        world.deliver(integration)

    url = f"{world.emulator.url}/2/httpapi"
    assert_stopped_and_pending(
        world, "amplitude_prod", raised, "HTTP 400", "Invalid options: min_id_length", url
    )
