"""The database goes away in the middle of a burst and comes back, while Nami keeps sending and
retries every webhook not answered 2xx: each answer is a 200 for a committed row or a 503, and
every event ends up stored exactly once, with nothing half-written.

Three ways the database goes away: a real PostgreSQL server stopped with `pg_ctl stop -m fast`
(open transactions rolled back, clients cut) and with `-m immediate` (every server process
killed, as in a crash; restarting runs crash recovery), both on a private throw-away cluster so
the shared server stays up for the other tests; and a relay in front of the shared server,
cut and restored (the path every other PostgreSQL test takes).
"""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Final, Literal

import pytest
import sqlalchemy as sa

from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events, nami_events_quarantine
from nami_pipelines_tests.conftest import _unavailable
from nami_pipelines_tests.events.nami_body_samples import transaction_body
from nami_pipelines_tests.private_postgres import PostgresUnavailable, PrivatePostgres
from nami_pipelines_tests.receiver.support import RunningReceiver, TcpRelay, signed_apps

APP: Final = "app-webhooks-0001"
SENDERS: Final = 16
BODIES: Final = 240
STOP_AFTER_ACKNOWLEDGED: Final = 60  # of the first half: the outage begins mid-burst
RETRY_PAUSE_SECONDS: Final = 0.02  # Nami backs off for up to a day; the test, briefly
MAX_ATTEMPTS: Final = 500  # a webhook never stored ends the test, not hangs it
WAIT_SECONDS: Final = 30

Phase = Literal["up", "stopping", "down", "starting", "up again"]


@dataclass(frozen=True, slots=True)
class Outage:
    """A database the test takes away (`begin`) and brings back (`end`), at `url`."""

    url: str
    begin: Callable[[], None]
    end: Callable[[], None]


def through(relay: TcpRelay, url: str) -> str:
    parsed = sa.make_url(url)
    return parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)


@pytest.fixture(
    params=[
        "pg_ctl stop -m fast",
        "pg_ctl stop -m immediate",
        pytest.param("relay cut", marks=pytest.mark.postgres),
    ]
)
def outage(request: pytest.FixtureRequest) -> Iterator[Outage]:
    if request.param == "relay cut":
        postgres_url = request.getfixturevalue("postgres_url")
        parsed = sa.make_url(postgres_url)
        relay = TcpRelay(parsed.host or "127.0.0.1", parsed.port or 5432)
        relay.restore()
        try:
            yield Outage(through(relay, postgres_url), relay.cut, relay.restore)
        finally:
            relay.cut()
        return
    try:
        cluster = PrivatePostgres()
    except PostgresUnavailable as reason:
        _unavailable(str(reason))
    mode = "immediate" if request.param.endswith("immediate") else "fast"
    with cluster:
        yield Outage(cluster.url, partial(cluster.stop, mode), cluster.start)


@dataclass(frozen=True, slots=True)
class Answer:
    index: int
    status: int
    fate: str | None  # the receiver's "status" on a 200
    sent_in: Phase
    answered_in: Phase


class Timeline:
    """The outage's phase and every answer, each with the phase it was sent and answered in;
    the controller waits on it for what the senders have seen."""

    def __init__(self) -> None:
        self.phase: Phase = "up"
        self.answers: list[Answer] = []
        self._changed = threading.Condition()

    def enter(self, phase: Phase) -> None:
        with self._changed:
            self.phase = phase

    def record(self, answer: Answer) -> None:
        with self._changed:
            self.answers.append(answer)
            self._changed.notify_all()

    def wait_for(self, enough: Callable[[list[Answer]], bool]) -> None:
        with self._changed:
            self._changed.wait_for(lambda: enough(self.answers), timeout=WAIT_SECONDS)


def deliver(receiver: RunningReceiver, timeline: Timeline, index: int, body: dict) -> None:
    """Post one webhook as Nami does: again after every answer but a 2xx."""
    for _ in range(MAX_ATTEMPTS):
        sent_in = timeline.phase
        response = receiver.post(APP, body)
        fate = response.json().get("status") if response.status_code == 200 else None
        timeline.record(Answer(index, response.status_code, fate, sent_in, timeline.phase))
        if response.status_code == 200:
            return
        time.sleep(RETRY_PAUSE_SECONDS)


def acknowledged(answers: list[Answer]) -> int:
    return sum(answer.status == 200 for answer in answers)


def while_down(answers: list[Answer]) -> list[Answer]:
    """Answers to requests sent and answered while the database was certainly gone."""
    return [a for a in answers if a.sent_in == "down" and a.answered_in == "down"]


def test_an_outage_mid_burst_answers_503_and_retries_store_each_event_once(
    outage: Outage, monkeypatch
):
    bodies = [transaction_body(id=f"tx-{index:03d}") for index in range(BODIES)]
    timeline = Timeline()
    store = EventStore(outage.url)
    try:
        with (
            RunningReceiver(store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver,
            ThreadPoolExecutor(SENDERS) as senders,
        ):
            send = partial(deliver, receiver, timeline)
            half = BODIES // 2
            first_half = [senders.submit(send, i, bodies[i]) for i in range(half)]
            timeline.wait_for(lambda answers: acknowledged(answers) >= STOP_AFTER_ACKNOWLEDGED)
            timeline.enter("stopping")
            outage.begin()
            timeline.enter("down")
            health_while_down = receiver.session.get(f"{receiver.url}/healthz", timeout=30)
            alive_while_down = receiver.session.get(f"{receiver.url}/livez", timeout=30)
            # Nami keeps sending new events while the database is away.
            second_half = [senders.submit(send, i, bodies[i]) for i in range(half, BODIES)]
            timeline.wait_for(lambda answers: len(while_down(answers)) >= SENDERS)
            timeline.enter("starting")
            outage.end()
            timeline.enter("up again")
            health_after = receiver.session.get(f"{receiver.url}/healthz", timeout=30)
            for delivery in first_half + second_half:
                delivery.result()
            # Every body answered 200 before the database came back was committed then: sent
            # again (Nami delivers at least once), each is a duplicate, not stored anew.
            early = [
                a.index for a in timeline.answers if a.status == 200 and a.sent_in != "up again"
            ]
            resent = list(senders.map(lambda i: receiver.post(APP, bodies[i]), early))
        reader = sa.create_engine(outage.url)
        with reader.connect() as connection:
            ids = connection.execute(sa.select(nami_events.c.event_id)).scalars().all()
            seqs = connection.execute(sa.select(nami_events.c.loaded_seq)).scalars().all()
            quarantined = connection.execute(
                sa.select(sa.func.count()).select_from(nami_events_quarantine)
            ).scalar_one()
        reader.dispose()
    finally:
        store.engine.dispose()

    answers = timeline.answers
    assert {answer.status for answer in answers} == {200, 503}
    assert len(while_down(answers)) >= SENDERS
    assert {answer.status for answer in while_down(answers)} == {503}  # no 2xx while down
    assert {a.status for a in answers if a.sent_in == "up again"} == {200}
    assert health_while_down.status_code == 503
    assert alive_while_down.status_code == 200 and alive_while_down.json() == {"status": "alive"}
    assert health_after.status_code == 200
    delivered = {answer.index for answer in answers if answer.status == 200}
    assert delivered == set(range(BODIES))
    stored_answers = Counter(answer.index for answer in answers if answer.fate == "stored")
    assert max(stored_answers.values()) == 1  # no event stored twice, to the receiver's word
    assert {answer.fate for answer in answers if answer.status == 200} <= {"stored", "duplicate"}
    assert len(early) >= STOP_AFTER_ACKNOWLEDGED
    assert {(r.status_code, r.json()["status"]) for r in resent} == {(200, "duplicate")}
    assert sorted(ids) == sorted(body["id"] for body in bodies)  # each exactly once
    assert quarantined == 0
    assert sorted(seqs) == list(range(1, BODIES + 1))  # unique, no gap from a half-written group
