"""Delivery forks its worker processes: a child must never use or close a connection it
inherited, or the parent's connection breaks (a PostgreSQL backend ends when any process
holding its socket says goodbye)."""

import os

from sqlalchemy import text

from nami_pipelines.events.store import EventStore


def _backend(store: EventStore) -> tuple[object, int]:
    """The pooled connection's driver object and what the database says of it."""
    with store.engine.connect() as connection:
        driver = connection.connection.dbapi_connection
        if store.dialect == "postgresql":
            value = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        else:
            value = connection.execute(text("SELECT count(*) FROM nami_events")).scalar_one()
    return driver, value


def test_a_forked_child_works_on_new_connections_and_leaves_the_parents_alone(event_store):
    parent_driver, parent_value = _backend(event_store)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        # The child: a query of its own, then it drops every reference and collects, as a
        # worker does before it exits.
        try:
            driver, value = _backend(event_store)
            os.write(writer, b"new" if driver is not parent_driver else b"inherited")
            event_store.engine.dispose()
            del driver
            import gc

            gc.collect()
        finally:
            os._exit(0)
    os.close(writer)
    _, status = os.waitpid(child, 0)
    told = os.read(reader, 100)
    os.close(reader)
    assert os.waitstatus_to_exitcode(status) == 0
    assert told == b"new"
    # The parent's pooled connection is the same one and still answers as before.
    driver, value = _backend(event_store)
    assert driver is parent_driver
    assert value == parent_value
