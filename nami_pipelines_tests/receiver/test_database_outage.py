"""The database goes away in the middle of a burst and comes back: every webhook answered 2xx
is stored, none is half-written, and Nami's retries store each event exactly once.

PostgreSQL is reached through a relay this test cuts and restores, so the shared server keeps
running for everyone else."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events, nami_events_quarantine
from nami_pipelines_tests.events.nami_body_samples import transaction_body
from nami_pipelines_tests.receiver.support import RunningReceiver, TcpRelay, signed_apps

APP = "app-webhooks-0001"
pytestmark = pytest.mark.postgres


def through(relay: TcpRelay, url: str) -> str:
    parsed = sa.make_url(url)
    return parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)


def test_an_outage_mid_burst_answers_503_and_retries_store_each_event_once(
    postgres_url, monkeypatch
):
    parsed = sa.make_url(postgres_url)
    relay = TcpRelay(parsed.host or "127.0.0.1", parsed.port or 5432)
    relay.restore()
    store = EventStore(through(relay, postgres_url))
    bodies = [transaction_body(id=f"tx-{index:03d}") for index in range(200)]
    try:
        with (
            RunningReceiver(store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver,
            ThreadPoolExecutor(16) as pool,
        ):

            def send(index: int) -> int:
                if index == 80:
                    relay.cut()  # the database goes away while requests are in flight
                return receiver.post(APP, bodies[index]).status_code

            first = list(pool.map(send, range(len(bodies))))
            assert set(first) <= {200, 503} and 503 in first
            acknowledged = {bodies[i]["id"] for i, status in enumerate(first) if status == 200}
            assert receiver.session.get(f"{receiver.url}/healthz", timeout=30).status_code == 503
            relay.restore()
            assert receiver.session.get(f"{receiver.url}/healthz", timeout=30).status_code == 200
            retried = [i for i, status in enumerate(first) if status != 200]
            again = list(pool.map(lambda i: receiver.post(APP, bodies[i]).status_code, retried))
            assert set(again) == {200}
            late_duplicates = list(pool.map(lambda b: receiver.post(APP, b).json(), bodies[:20]))
            assert {answer["status"] for answer in late_duplicates} == {"duplicate"}
        reader = sa.create_engine(postgres_url)
        with reader.connect() as connection:
            ids = connection.execute(sa.select(nami_events.c.event_id)).scalars().all()
            quarantined = connection.execute(
                sa.select(sa.func.count()).select_from(nami_events_quarantine)
            ).scalar_one()
            seqs = connection.execute(sa.select(nami_events.c.loaded_seq)).scalars().all()
        reader.dispose()
    finally:
        store.engine.dispose()
        relay.cut()
    assert sorted(ids) == sorted(body["id"] for body in bodies)  # each exactly once
    assert acknowledged <= set(ids)
    assert quarantined == 0
    assert sorted(seqs) == list(range(1, len(bodies) + 1))  # no gap from a half-written group
