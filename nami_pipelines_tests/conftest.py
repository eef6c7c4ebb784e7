"""Shared fixtures: real databases (SQLite always, PostgreSQL where reachable)."""

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from nami_pipelines.events.store import EventStore

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
def event_store(database_url: str) -> Iterator[EventStore]:
    store = EventStore(database_url)
    yield store
    store.engine.dispose()
