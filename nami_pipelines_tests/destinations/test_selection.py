"""The selection rule on fixed events, as the emulators receive them: which events each
integration sends (type, platform, app) and, per event, whether it is dropped (`sandbox: drop`)
and which id it goes under (`customer_id` / `user_id`, `fallback_to_nami_user_id`).

Every expected row below is written by hand from the 32 events of `EVENTS`: each combination of
app (ours / another), platform (apple / google), kind (a `user.*` / a device event), environment
(production / sandbox) and user (with an external id / without one).
"""

import uuid
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from nami_pipelines.config import parse_integrations
from nami_pipelines.defs.delivery.automation import partitions_touched
from nami_pipelines.delivery.lag import delivery_lag
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.run import count_selected
from nami_pipelines.delivery.status import unsettled_in_days
from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines_tests.builders import APP_ID, APPLE_PLATFORM, GOOGLE_PLATFORM, EventLog
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS, MPARTICLE_KEYS
from nami_pipelines_tests.destinations.delivery_world import DeliveryWorld

OTHER_APP_ID = "app-other-0002"
DAY = datetime.now(UTC).date() - timedelta(days=2)
# Users: `ext` has the external id `ext-0001`; `noext` has none. Nami user ids: `u-ext`, `u-noext`.
EXTERNAL_IDS = {"ext": "ext-0001", "noext": None}


def _event_id(name: str) -> str:
    """Events carry UUIDs, as Nami's do (mParticle's `source_message_id` is the id itself)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _events() -> tuple[EventLog, dict[str, str]]:
    """The 32 events, named `app/platform/kind/environment/user`; and id -> name."""
    log, names = EventLog(), {}
    at = f"{DAY.isoformat()}T12:00:00+00:00"
    for app, platform, kind, environment, user in product(
        ("ours", "other"),
        ("apple", "google"),
        ("user", "device"),
        ("prod", "sandbox"),
        EXTERNAL_IDS,
    ):
        name = f"{app}/{platform}/{kind}/{environment}/{user}"
        platform_id = APPLE_PLATFORM if platform == "apple" else GOOGLE_PLATFORM
        if kind == "user":
            record = log.user_event(
                f"u-{user}",
                "user.subscription.purchased",
                at,
                entitlements=[("premium", "premium_monthly", None)],
                external_id=EXTERNAL_IDS[user],
                platform=platform_id,
            )
        else:
            record = log.device_event(
                f"u-{user}",
                "device.impression",
                at,
                device=f"dev-{platform}-{user}",
                external_id=EXTERNAL_IDS[user],
                platform=platform_id,
            )
        record["event_id"] = _event_id(name)
        record["app_id"] = APP_ID if app == "ours" else OTHER_APP_ID
        record["environment"] = "production" if environment == "prod" else "sandbox"
        names[record["event_id"]] = name
    return log, names


def _feed(**options) -> dict:
    return {
        "name": "ios_feed",
        "type": "mparticle",
        "app_id": APP_ID,
        "platform": "apple",
        "credentials": {"key_env": "IOS_FEED_KEY", "secret_env": "IOS_FEED_SECRET"},
        "customer_id": "nami_user_id",
        **options,
    }


def _project(**options) -> dict:
    return {
        "name": "amplitude_prod",
        "type": "amplitude",
        "app_id": APP_ID,
        "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
        "user_id": "nami_user_id",
        **options,
    }


def _ours(platforms=("apple", "google"), kinds=("user", "device"), user="u-{user}") -> dict:
    """Shorthand for the cases where every event of a slice of our app arrives."""
    return {
        f"ours/{platform}/{kind}/{environment}/{who}": user.format(user=who)
        for platform in platforms
        for kind in kinds
        for environment in ("prod", "sandbox")
        for who in EXTERNAL_IDS
    }


# (integration, how many of the 32 events it selects (before sandbox and ids), what the
# emulator received: event name -> the user it was filed under).
SELECTION_CASES = {
    "feed bound to apple, every type": (
        _feed(),
        8,
        {
            "ours/apple/user/prod/ext": "u-ext",
            "ours/apple/user/prod/noext": "u-noext",
            "ours/apple/user/sandbox/ext": "u-ext",
            "ours/apple/user/sandbox/noext": "u-noext",
            "ours/apple/device/prod/ext": "u-ext",
            "ours/apple/device/prod/noext": "u-noext",
            "ours/apple/device/sandbox/ext": "u-ext",
            "ours/apple/device/sandbox/noext": "u-noext",
        },
    ),
    "feed bound to google, impressions only": (
        _feed(platform="google", events=["device.impression"]),
        4,
        {
            "ours/google/device/prod/ext": "u-ext",
            "ours/google/device/prod/noext": "u-noext",
            "ours/google/device/sandbox/ext": "u-ext",
            "ours/google/device/sandbox/noext": "u-noext",
        },
    ),
    "feed for every platform": (_feed(platform="all"), 16, _ours()),
    "project, purchases only": (
        _project(events=["user.subscription.purchased"]),
        8,
        _ours(kinds=("user",)),
    ),
    "project of an app without events": (_project(app_id="app-without-events-0003"), 0, {}),
    "project of the other app": (
        _project(app_id=OTHER_APP_ID, events=["device.impression"]),
        8,
        {
            f"other/{platform}/device/{environment}/{who}": f"u-{who}"
            for platform in ("apple", "google")
            for environment in ("prod", "sandbox")
            for who in EXTERNAL_IDS
        },
    ),
}

DECISION_CASES = {
    "feed: sandbox dropped, external id, no fallback": (
        _feed(sandbox="drop", customer_id="external_id"),
        8,
        {"ours/apple/user/prod/ext": "ext-0001", "ours/apple/device/prod/ext": "ext-0001"},
    ),
    "feed: sandbox sent, external id with fallback": (
        _feed(customer_id="external_id", fallback_to_nami_user_id=True),
        8,
        {
            "ours/apple/user/prod/ext": "ext-0001",
            "ours/apple/user/prod/noext": "u-noext",
            "ours/apple/user/sandbox/ext": "ext-0001",
            "ours/apple/user/sandbox/noext": "u-noext",
            "ours/apple/device/prod/ext": "ext-0001",
            "ours/apple/device/prod/noext": "u-noext",
            "ours/apple/device/sandbox/ext": "ext-0001",
            "ours/apple/device/sandbox/noext": "u-noext",
        },
    ),
    "feed: sandbox dropped, nami user id": (
        _feed(sandbox="drop"),
        8,
        {
            "ours/apple/user/prod/ext": "u-ext",
            "ours/apple/user/prod/noext": "u-noext",
            "ours/apple/device/prod/ext": "u-ext",
            "ours/apple/device/prod/noext": "u-noext",
        },
    ),
    # Amplitude takes a device id where there is no user id: a device event of a user without
    # an external id still goes, filed under its device; a `user.*` event has no device of its
    # own here (its `devices[]` is empty), so it is skipped.
    "project: external id, no fallback": (
        _project(
            user_id="external_id", events=["user.subscription.purchased", "device.impression"]
        ),
        16,
        {
            **{
                f"ours/{platform}/{kind}/{environment}/ext": "ext-0001"
                for platform in ("apple", "google")
                for kind in ("user", "device")
                for environment in ("prod", "sandbox")
            },
            "ours/apple/device/prod/noext": "dev-apple-noext",
            "ours/apple/device/sandbox/noext": "dev-apple-noext",
            "ours/google/device/prod/noext": "dev-google-noext",
            "ours/google/device/sandbox/noext": "dev-google-noext",
        },
    ),
    "project: sandbox dropped, external id with fallback": (
        _project(sandbox="drop", user_id="external_id", fallback_to_nami_user_id=True),
        16,
        {
            "ours/apple/user/prod/ext": "ext-0001",
            "ours/apple/user/prod/noext": "u-noext",
            "ours/apple/device/prod/ext": "ext-0001",
            "ours/apple/device/prod/noext": "u-noext",
            "ours/google/user/prod/ext": "ext-0001",
            "ours/google/user/prod/noext": "u-noext",
            "ours/google/device/prod/ext": "ext-0001",
            "ours/google/device/prod/noext": "u-noext",
        },
    ),
}


@pytest.fixture
def loaded(event_store, tmp_path):
    log, names = _events()
    source = tmp_path / "events.ndjson"
    source.write_text(log.ndjson())
    summary = load_ndjson_file(source, event_store)
    assert (summary.loaded, summary.quarantined) == (32, 0), summary
    return event_store, names


def _received(emulator, integration, names: dict[str, str]) -> dict[str, str]:
    """Event name -> the user the emulator filed it under, for this integration's key."""
    if integration.type == "mparticle":
        api, credential, id_of = "mparticle", MPARTICLE_KEYS["ios_feed"][0], "source_message_id"
    else:
        api, credential, id_of = "amplitude", AMPLITUDE_KEYS["amplitude_prod"], "insert_id"
    received = {}
    for record in emulator.received(api):
        if record["credential"] == credential:
            event = record["event"]
            event_id = event["data"][id_of] if api == "mparticle" else event[id_of]
            received[names[event_id]] = record["user"]
    return received


def _integration(document: dict, url: str):
    url_field = "base_url" if document["type"] == "mparticle" else "endpoint"
    (integration,) = parse_integrations(
        {"integrations": [{**document, url_field: url}]}, check_env=False
    )
    return integration


def _deliver(store, document: dict, emulator) -> tuple[dict, object]:
    integration = _integration(document, emulator.url)
    world = DeliveryWorld(store, DeliveryLedger(store.engine), emulator, DAY)
    return integration, world.deliver(integration)


@pytest.mark.parametrize("case", [*SELECTION_CASES, *DECISION_CASES])
def test_each_integration_receives_exactly_its_events_under_its_ids(
    case, loaded, fresh_emulator, credentials_env
):
    store, names = loaded
    document, selected, expected = {**SELECTION_CASES, **DECISION_CASES}[case]
    integration, report = _deliver(store, document, fresh_emulator)
    assert _received(fresh_emulator, integration, names) == expected
    assert report.selected == selected
    assert (report.accepted, report.rejected, report.unresolved) == (len(expected), 0, 0)
    assert report.skipped == selected - len(expected)


@pytest.mark.parametrize("case", SELECTION_CASES)
def test_every_reader_of_the_store_counts_the_same_events(case, loaded):
    """Before any delivery: the progress count, status, the lag check and the sensor."""
    store, _names = loaded
    document, selected, _expected = SELECTION_CASES[case]
    integration = _integration(document, "http://127.0.0.1:9")
    assert count_selected(store, integration, DAY) == selected
    assert unsettled_in_days(store, integration, [DAY]).count == selected
    noon = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=12)
    lag = delivery_lag(store, integration, since=noon - timedelta(days=1), older_than=noon)
    assert lag.undelivered == selected
    arrived, _reached = store.loaded_since(0, limit=1_000)
    touched = [(DAY.isoformat(), integration.name)] if selected else []
    assert partitions_touched(arrived, [integration]) == touched
