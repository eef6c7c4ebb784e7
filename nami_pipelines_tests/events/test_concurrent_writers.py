"""Two writers racing for the same event id on PostgreSQL: the second one's statement starts
before the first commits (so its snapshot does not see the row) and waits for the sequence lock.
The first writer's row must be kept, the second's different content for that id reported as a
conflict (not taken for a duplicate of itself), and its other row numbered after the first's."""

import threading
import time

import pytest
import sqlalchemy as sa

from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events
from nami_pipelines.events.validation import validate_event
from nami_pipelines.events.writes import InsertOutcome, WriteBatch, write_batch
from nami_pipelines_tests.events.test_loader import good_record

pytestmark = pytest.mark.postgres


SECOND_WRITER = "nami-test-second-writer"


def _waiting_for_a_lock(admin: sa.Engine) -> bool:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE wait_event_type = 'Lock' AND application_name = '{SECOND_WRITER}'"
    )
    with admin.connect() as connection:
        return connection.execute(query).scalar_one() > 0


def test_an_id_committed_while_a_writer_waits_for_the_lock_is_compared_with_what_was_stored(
    postgres_url, postgres_admin_engine
):
    store = EventStore(postgres_url)
    second_store = EventStore(f"{postgres_url}&application_name={SECOND_WRITER}")
    raced = validate_event(good_record("evt-raced"))
    raced_again = validate_event(good_record("evt-raced", external_id="someone-else"))
    other = validate_event(good_record("evt-b"))
    results: list[InsertOutcome] = []
    with store.engine.connect() as first:
        first.begin()
        write_batch(first, WriteBatch([raced], ["first"], [1]))

        def second_writer() -> None:
            with second_store.engine.begin() as connection:
                results.append(
                    write_batch(connection, WriteBatch([raced_again, other], ["2"] * 2, [1, 2]))
                )

        second = threading.Thread(target=second_writer)
        second.start()
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock(postgres_admin_engine):
            assert time.monotonic() < deadline, "the second writer never waited for the lock"
            time.sleep(0.05)
        first.commit()
    second.join(timeout=30)

    (outcome,) = results
    assert outcome.fates == ["conflict", "loaded"]
    assert (outcome.loaded, outcome.duplicates) == (1, 0)
    assert [line.event_id for line in outcome.conflicts] == ["evt-raced"]
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(nami_events.c.event_id, nami_events.c.loaded_seq).order_by("loaded_seq")
        ).all()
    assert [event_id for event_id, _ in rows] == ["evt-raced", "evt-b"]
    with store.engine.connect() as connection:
        kept = connection.execute(
            sa.select(nami_events.c.external_id).where(nami_events.c.event_id == "evt-raced")
        ).scalar_one()
    assert kept == raced.external_id
    assert rows[0].loaded_seq < rows[1].loaded_seq
    assert store.max_loaded_seq() >= rows[1].loaded_seq
    store.engine.dispose()
    second_store.engine.dispose()
