"""Resources: the event database, configured from the environment, never from literals."""

import os
from functools import lru_cache

import dagster as dg

from nami_pipelines.events.store import EventStore
from nami_pipelines.settings import EVENTS_DB_URL_VARIABLE, events_db_url
from nami_pipelines.snapshots.repository import SnapshotRepository


@lru_cache(maxsize=8)
def _store_for(url: str) -> EventStore:
    """One engine (and one schema check) per database per process."""
    return EventStore(url)


class EventStoreResource(dg.ConfigurableResource):
    """The Nami event database (`NAMI_EVENTS_DB_URL`, else the embedded SQLite file)."""

    database_url: str

    def store(self) -> EventStore:
        return _store_for(self.database_url)

    def snapshots(self) -> SnapshotRepository:
        return SnapshotRepository(self.store().engine)


def event_store_resource() -> EventStoreResource:
    """From the environment when set, so a PostgreSQL URL (with its password) stays out of the
    UI's resource config; otherwise the embedded default, which holds no secret."""
    if os.environ.get(EVENTS_DB_URL_VARIABLE):
        return EventStoreResource(database_url=dg.EnvVar(EVENTS_DB_URL_VARIABLE))
    return EventStoreResource(database_url=events_db_url())


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"event_store": event_store_resource()})
