"""The webhook receiver over real HTTP: what Nami gets back, and what is stored for it."""

import json
import logging
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa

from nami_pipelines.events.tables import nami_events, nami_events_quarantine
from nami_pipelines.receiver.apps import webhook_apps
from nami_pipelines.receiver.committers import GroupCommitter, PerRequestCommitter
from nami_pipelines.receiver.signatures import sign_hmac_sha256
from nami_pipelines_tests.events.nami_body_samples import (
    EXTERNAL_ID,
    USER_ID,
    renewed_body,
    transaction_body,
)
from nami_pipelines_tests.receiver.support import SECRET, RunningReceiver, signed_apps

APP = "app-webhooks-0001"
EVENT_ID = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def stored(store) -> list[dict]:
    with store.engine.connect() as connection:
        query = sa.select(nami_events).order_by(nami_events.c.loaded_seq)
        return [dict(row) for row in connection.execute(query).mappings()]


def quarantined(store) -> list[tuple]:
    columns = (nami_events_quarantine.c[name] for name in ("source", "event_id", "reason"))
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(*columns)).all()]


def test_a_signed_body_is_stored_then_acknowledged_and_a_retry_adds_nothing(
    event_store, monkeypatch
):
    with RunningReceiver(event_store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver:
        first = receiver.post(APP, renewed_body())
        retry = receiver.post(APP, renewed_body())
    assert (first.status_code, first.json()) == (200, {"status": "stored"})
    assert (retry.status_code, retry.json()) == (200, {"status": "duplicate"})
    (row,) = stored(event_store)
    assert (row["event_id"], row["app_id"], row["nami_user_id"], row["external_id"]) == (
        EVENT_ID,
        APP,
        USER_ID,
        EXTERNAL_ID,
    )
    assert json.loads(row["payload"]) == renewed_body()


def test_a_different_body_under_a_stored_id_is_quarantined_once(event_store, monkeypatch):
    changed = renewed_body(event_platform="google")
    with RunningReceiver(event_store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver:
        assert receiver.post(APP, renewed_body()).json() == {"status": "stored"}
        answers = [receiver.post(APP, changed) for _ in range(2)]  # Nami retries it
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "quarantined"})] * 2
    assert quarantined(event_store) == [
        (f"webhook {APP}", EVENT_ID, "duplicate event_id with different content")
    ]
    assert stored(event_store)[0]["platform_type"] == "apple"


def test_a_signed_body_that_cannot_be_used_is_quarantined_and_acknowledged(
    event_store, monkeypatch
):
    bodies = [renewed_body(id="late-bad", created_date="not a date"), b"{not json", b"[1, 2]"]
    with RunningReceiver(event_store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver:
        answers = [receiver.post(APP, body) for body in [*bodies, bodies[0]]]
    assert [(a.status_code, a.json()["status"]) for a in answers] == [(200, "quarantined")] * 4
    assert sorted(quarantined(event_store), key=str) == sorted(
        [
            (
                f"webhook {APP}",
                "late-bad",
                "occurred_at is not an ISO 8601 timestamp: 'not a date'",
            ),
            (
                f"webhook {APP}",
                None,
                "invalid JSON: Expecting property name enclosed in double quotes at column 2",
            ),
            (f"webhook {APP}", None, "body is not a JSON object"),
        ],
        key=str,
    )
    assert stored(event_store) == []


def test_missing_or_wrong_signatures_get_401_and_store_nothing(event_store, monkeypatch, caplog):
    body = json.dumps(renewed_body()).encode()
    caplog.set_level(logging.WARNING, logger="nami_pipelines.receiver")
    with RunningReceiver(event_store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver:
        missing = receiver.post(APP, body, secret=None)
        wrong = receiver.post(APP, body, secret="another-secret")
        altered = receiver.post(APP, body + b" ", signature=sign_hmac_sha256(body, SECRET))
        prefixed = receiver.post(APP, body, signature="sha256=" + sign_hmac_sha256(body, SECRET))
    assert [missing.status_code, wrong.status_code, altered.status_code] == [401, 401, 401]
    assert missing.json() == {"error": "missing nami-signature header"}
    assert wrong.json() == {"error": "wrong nami-signature"}
    assert prefixed.json() == {"status": "stored"}
    assert len(stored(event_store)) == 1 and quarantined(event_store) == []
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals == [
        f"webhook refused (401): app '{APP}': missing nami-signature header",
        f"webhook refused (401): app '{APP}': wrong nami-signature",
        f"webhook refused (401): app '{APP}': wrong nami-signature",
    ]
    assert not any(SECRET in r.getMessage() or USER_ID in r.getMessage() for r in caplog.records)


def test_an_unknown_app_gets_404_and_nothing_is_stored(event_store, monkeypatch):
    with RunningReceiver(event_store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver:
        answer = receiver.post("someone-elses-app", renewed_body())
    assert answer.status_code == 404
    assert stored(event_store) == [] and quarantined(event_store) == []


def test_a_body_over_one_megabyte_gets_413_declared_or_streamed(event_store, monkeypatch):
    big = json.dumps(renewed_body(padding="x" * (1024 * 1024))).encode()

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with RunningReceiver(event_store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver:
        declared = receiver.post(APP, big)
        streamed = receiver.session.post(
            f"{receiver.url}/webhooks/nami/{APP}",
            data=chunks(),  # chunked: no Content-Length to go by
            headers={"nami-signature": sign_hmac_sha256(big, SECRET)},
            timeout=30,
        )
        just_fits = receiver.post(APP, renewed_body(padding="x" * (1024 * 1024 - 2000)))
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert just_fits.status_code == 200
    assert len(stored(event_store)) == 1


def test_types_we_do_not_send_are_acknowledged_and_counted(event_store, monkeypatch):
    session = {
        "id": "s-1",
        "event_type": "device.session.start",
        "created_date": "2026-11-24T08:00:00Z",
    }
    with RunningReceiver(event_store, signed_apps(APP, monkeypatch=monkeypatch)) as receiver:
        answers = [
            receiver.post(APP, session),
            receiver.post(APP, session),
            receiver.post(APP, {**session, "id": "s-2", "event_type": "device.session.end"}),
            receiver.post(APP, {**session, "id": "p-1", "event_type": "purchase.updated"}),
        ]
    assert [a.json() for a in answers] == [{"status": "not_sent"}] * 4
    assert event_store.unsent_counts() == {
        "device.session.start": 1,
        "device.session.end": 1,
        "purchase.updated": 1,
    }
    assert quarantined(event_store) == [] and stored(event_store) == []


def test_signature_none_takes_unsigned_bodies_and_healthz_answers(event_store):
    apps = webhook_apps({"webhooks": [{"app_id": APP, "signature": "none"}]})
    with RunningReceiver(event_store, apps) as receiver:
        answer = receiver.post(APP, transaction_body(), secret=None)
        health = requests.get(f"{receiver.url}/healthz", timeout=10)
    assert answer.json() == {"status": "stored"}
    assert (health.status_code, health.json()["status"]) == (200, "ok")


def test_a_burst_of_concurrent_webhooks_is_each_stored_once_in_either_mode(
    event_store, monkeypatch
):
    apps = signed_apps(APP, monkeypatch=monkeypatch)
    sent = []
    for mode, committer in (("group", None), ("plain", PerRequestCommitter(event_store))):
        bodies = [transaction_body(id=f"{mode}-{index:03d}") for index in range(60)]
        with (
            RunningReceiver(event_store, apps, committer) as receiver,
            ThreadPoolExecutor(16) as pool,
        ):
            answers = list(pool.map(lambda body: receiver.post(APP, body), [*bodies, *bodies]))
        assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 60 + ["stored"] * 60
        sent += [body["id"] for body in bodies]
    assert sorted(row["event_id"] for row in stored(event_store)) == sorted(sent)
    assert [row["loaded_seq"] for row in stored(event_store)] == list(range(1, 121))


def test_webhooks_arriving_together_share_a_transaction(event_store, monkeypatch):
    commits = []
    sa.event.listen(event_store.engine, "commit", lambda _connection: commits.append(1))
    committer = GroupCommitter(event_store, max_wait=0.25)  # generous: the senders start at once
    bodies = [transaction_body(id=f"together-{index:02d}") for index in range(16)]
    apps = signed_apps(APP, monkeypatch=monkeypatch)
    with RunningReceiver(event_store, apps, committer) as receiver, ThreadPoolExecutor(16) as pool:
        receiver.post(APP, transaction_body(id="warm-up"))  # connections open, pool filled
        before = len(commits)
        answers = list(pool.map(lambda body: receiver.post(APP, body), bodies))
        during = len(commits) - before
    assert [answer.json() for answer in answers] == [{"status": "stored"}] * 16
    assert 1 <= during < 16
    assert len(stored(event_store)) == 17
