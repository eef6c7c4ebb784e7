"""Shared fixtures: real databases (SQLite always, PostgreSQL where reachable)."""

import os
import socket
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from nami_pipelines.events.store import EventStore

if TYPE_CHECKING:
    import pandas as pd

    from nami_pipelines.emulators import EmulatorProcess

POSTGRES_URL_VARIABLE = "NAMI_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_VARIABLE = "NAMI_REQUIRE_POSTGRES"


def _unavailable(reason: str) -> None:
    """Skip with the reason, unless CI demands PostgreSQL: then a missing database is a failure."""
    if os.environ.get(REQUIRE_POSTGRES_VARIABLE):
        pytest.fail(f"{REQUIRE_POSTGRES_VARIABLE} is set but {reason}")
    pytest.skip(reason)


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        _unavailable(
            f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test; .ci/run sets it)"
        )
    return url


@pytest.fixture(scope="session")
def postgres_admin_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(_postgres_base_url())
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
    except sa.exc.OperationalError as error:
        _unavailable(f"PostgreSQL at {POSTGRES_URL_VARIABLE} is not reachable: {error.orig}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin_engine: sa.Engine) -> Iterator[str]:
    """A fresh schema per test, selected through the URL so subprocesses see it too."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_admin_engine.begin() as connection:
        connection.execute(sa.text(f"create schema {schema}"))
    base = postgres_admin_engine.url.render_as_string(hide_password=False)
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with postgres_admin_engine.begin() as connection:
        connection.execute(sa.text(f"drop schema {schema} cascade"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Every test that touches the event store runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def production_like_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[EventStore]:
    """One database for long tests: PostgreSQL where configured (CI), else SQLite."""
    if os.environ.get(POSTGRES_URL_VARIABLE):
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    store = EventStore(url)
    yield store
    store.engine.dispose()


@pytest.fixture
def event_store(database_url: str) -> Iterator[EventStore]:
    store = EventStore(database_url)
    yield store
    store.engine.dispose()


# Credentials the emulator accepts; tests put them in the environment by variable name, as a
# user would, and grep for them where they must never appear.
MPARTICLE_KEYS = {
    "ios_feed": ("us1-ios-key-8f3a", "ios-secret-5c2e91"),
    "android_feed": ("us1-android-key-b71d", "android-secret-0d4c77"),
}
AMPLITUDE_KEYS = {"amplitude_prod": "amp-prod-key-4e9b2f", "amplitude_eu": "amp-eu-key-71aa03"}


@pytest.fixture(scope="session")
def emulator() -> Iterator["EmulatorProcess"]:
    """One emulator process per test worker; tests reset it before use."""
    from nami_pipelines.emulators import EmulatorProcess, EmulatorSettings

    settings = EmulatorSettings(
        mparticle_credentials=dict(MPARTICLE_KEYS.values()),
        amplitude_api_keys=list(AMPLITUDE_KEYS.values()),
    )
    with EmulatorProcess(settings) as process:
        yield process


@pytest.fixture
def fresh_emulator(emulator):
    emulator.reset()
    emulator.inject_faults()
    return emulator


@pytest.fixture
def credentials_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The integrations' secrets in environment variables, named as the config names them."""
    variables = {}
    for name, (key, secret) in MPARTICLE_KEYS.items():
        variables[f"{name.upper()}_KEY"] = key
        variables[f"{name.upper()}_SECRET"] = secret
    for name, key in AMPLITUDE_KEYS.items():
        variables[f"{name.upper()}_API_KEY"] = key
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    return variables


def integrations_document(base_url: str, app_id: str) -> dict:
    """The demo's integrations against an emulator: an iOS and an Android feed, two projects."""
    return {
        "integrations": [
            {
                "name": "ios_feed",
                "type": "mparticle",
                "app_id": app_id,
                "platform": "apple",
                "base_url": base_url,
                "credentials": {"key_env": "IOS_FEED_KEY", "secret_env": "IOS_FEED_SECRET"},
                "customer_id": "nami_user_id",
            },
            {
                "name": "android_feed",
                "type": "mparticle",
                "app_id": app_id,
                "platform": "google",
                "base_url": base_url,
                "credentials": {
                    "key_env": "ANDROID_FEED_KEY",
                    "secret_env": "ANDROID_FEED_SECRET",
                },
                "customer_id": "external_id",
            },
            {
                "name": "amplitude_prod",
                "type": "amplitude",
                "app_id": app_id,
                "endpoint": base_url,
                "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
                "user_id": "external_id",
            },
        ]
    }


# What each integration of `integrations_document` sends, written out by hand rather than
# with the product's selection rule: the document's app's events of every type (none sets
# `events:`); for a feed, only those of its platform (None: every platform).
PLATFORMS_SENT: dict[str, frozenset[str] | None] = {
    "ios_feed": frozenset({"apple"}),
    "android_feed": frozenset({"google"}),
    "amplitude_prod": None,
}


def sent_by_hand(events: "pd.DataFrame", app_id: str, platforms: frozenset[str] | None) -> set:
    """The ids of `events` of `app_id` (and of `platforms`, unless None)."""
    mine = events[events["app_id"] == app_id]
    if platforms is not None:
        mine = mine[mine["platform_type"].isin(platforms)]
    return set(mine["event_id"])


def private_dagster_home(folder) -> str:
    """A Dagster instance of the test's own (default SQLite storage inside `folder`), so that
    command-line runs, which otherwise record in the repository's instance, leave nothing there."""
    home = folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return str(home)


def free_port() -> int:
    """A port nothing listens on now (for a process that must bind a given one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
