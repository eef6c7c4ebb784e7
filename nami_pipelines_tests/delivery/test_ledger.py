"""The delivery ledger: claims are exclusive per user, outcomes stick, re-sends are explicit."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from sqlalchemy import text

from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, OutcomeGroup

DAY = date(2026, 2, 1)


def events_of(count: int, users: int = 7) -> dict[str | None, list[str]]:
    """Event ids e00000... spread over `users` users (user0, user1, ...)."""
    by_user: dict[str | None, list[str]] = {}
    for n in range(count):
        by_user.setdefault(f"user{n % users}", []).append(f"e{n:05d}")
    return by_user


def test_claim_record_and_never_claim_an_outcome_again(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = events_of(5)
    claim = ledger.claim("feed", DAY, events, worker="w1")
    assert sorted(claim.events) == ["e00000", "e00001", "e00002", "e00003", "e00004"]
    assert claim.events["e00003"] == "user3"
    groups = [
        OutcomeGroup(ACCEPTED, None, ["e00000"]),
        OutcomeGroup(REJECTED, "HTTP 400: bad", ["e00001"]),
        OutcomeGroup(SKIPPED, "no external_id", ["e00002"]),
    ]
    ledger.record("feed", DAY, groups, claim.events, worker="w1")
    # While w1 holds the users, nobody else gets any of their events.
    assert ledger.claim("feed", DAY, events, worker="w2").events == {}
    ledger.end_claims("feed", DAY, claim.users, worker="w1")
    # Once w1 is done, another run gets only what has no outcome.
    assert sorted(ledger.claim("feed", DAY, events, worker="w2").events) == ["e00003", "e00004"]
    counts = ledger.status_counts("feed", DAY)
    assert counts == {PENDING: 0, ACCEPTED: 1, REJECTED: 1, SKIPPED: 1}
    rows = {row["event_id"]: row for row in ledger.entries("feed")}
    assert sorted(rows) == ["e00000", "e00001", "e00002"]
    assert rows["e00001"]["reason"] == "HTTP 400: bad"
    assert rows["e00000"]["attempts"] == 1 and rows["e00000"]["resolved_at"] is not None
    assert rows["e00002"]["nami_user_id"] == "user2"
    # Integrations are independent: the same events are new for another one.
    assert len(ledger.claim("other_feed", DAY, events, worker="w2").events) == 5


def test_events_without_a_user_are_claimed_together(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = {None: ["e1", "e2"], "user0": ["e3"]}
    first = ledger.claim("feed", DAY, events, worker="w1")
    assert first.events == {"e1": None, "e2": None, "e3": "user0"}
    ledger.record("feed", DAY, [OutcomeGroup(ACCEPTED, None, ["e1"])], first.events, worker="w1")
    assert ledger.claim("feed", DAY, events, worker="w2").events == {}
    ledger.end_claims("feed", DAY, first.users, worker="w1")
    assert ledger.claim("feed", DAY, events, worker="w2").events == {"e2": None, "e3": "user0"}
    assert ledger.entries("feed", ["e1"])[0]["nami_user_id"] is None


def test_expired_lease_is_claimed_again_and_release_keeps_events_pending(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = events_of(3)
    ledger.claim("feed", DAY, events, worker="dead", lease=timedelta(seconds=-1))
    alive = ledger.claim("feed", DAY, events, worker="alive")
    assert len(alive.events) == 3
    ledger.release(
        "feed", DAY, ["e00000"], alive.events, worker="alive", reason="gave up", attempts=8
    )
    row = ledger.entries("feed", ["e00000"])[0]
    assert (row["status"], row["reason"], row["attempts"], row["resolved_at"]) == (
        PENDING,
        "gave up",
        8,
        None,
    )
    ledger.end_claims("feed", DAY, alive.users, worker="alive")
    later = ledger.claim("feed", DAY, {"user0": ["e00000"]}, worker="later")
    assert later.events == {"e00000": "user0"}
    ledger.record(
        "feed", DAY, [OutcomeGroup(ACCEPTED, None, ["e00000"])], later.events, worker="later"
    )
    row = ledger.entries("feed", ["e00000"])[0]
    assert (row["status"], row["reason"], row["attempts"]) == (ACCEPTED, None, 9)


def test_outcome_from_a_worker_that_lost_its_lease_is_ignored(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = events_of(1)
    slow = ledger.claim("feed", DAY, events, worker="slow", lease=timedelta(seconds=-1))
    fast = ledger.claim("feed", DAY, events, worker="fast")
    assert fast.events == {"e00000": "user0"}
    late = [OutcomeGroup(REJECTED, "late", ["e00000"])]
    ledger.record("feed", DAY, late, slow.events, worker="slow")
    assert ledger.entries("feed") == []
    ledger.record(
        "feed", DAY, [OutcomeGroup(ACCEPTED, None, ["e00000"])], fast.events, worker="fast"
    )
    assert ledger.entries("feed")[0]["status"] == ACCEPTED


def test_resend_is_explicit(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = events_of(2)
    claim = ledger.claim("feed", DAY, events, worker="w1")
    accepted = [OutcomeGroup(ACCEPTED, None, ["e00000", "e00001"])]
    ledger.record("feed", DAY, accepted, claim.events, worker="w1")
    ledger.end_claims("feed", DAY, claim.users, worker="w1")
    assert ledger.claim("feed", DAY, events, worker="w2").events == {}
    again = ledger.claim("feed", DAY, events, worker="w2", resend=True)
    assert sorted(again.events) == ["e00000", "e00001"]


def test_concurrent_claims_are_disjoint_and_complete(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = events_of(600, users=120)
    users = sorted(events)

    def claim_in_slices(worker: str) -> list[str]:
        claimed: list[str] = []
        for start in range(0, len(users), 10):
            part = {user: events[user] for user in users[start : start + 10]}
            claimed += ledger.claim("feed", DAY, part, worker=worker).events
        return claimed

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(claim_in_slices, ["a", "b", "c", "d"]))
    every = [event_id for result in results for event_id in result]
    assert len(every) == len(set(every)) == 600


def test_last_sent_attributes_are_upserted(event_store):
    ledger = DeliveryLedger(event_store.engine)
    ledger.remember_sent_attributes("feed", {"u1": {"namiml_in_trial_period": True}})
    ledger.remember_sent_attributes(
        "feed", {"u1": {"namiml_in_trial_period": False}, "u2": {"namiml_active_skus": ["s"]}}
    )
    assert ledger.last_sent_attributes("feed", ["u1", "u2", "u3"]) == {
        "u1": {"namiml_in_trial_period": False},
        "u2": {"namiml_active_skus": ["s"]},
    }


def test_a_ledger_keyed_by_event_alone_keeps_its_rows(event_store):
    """A database whose ledger predates the (integration, day, user, event) key."""
    with event_store.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE delivery_ledger (integration VARCHAR(64) NOT NULL, "
                "event_id VARCHAR(64) NOT NULL, nami_user_id VARCHAR(128), "
                "partition_date DATE NOT NULL, status VARCHAR(16) NOT NULL, reason TEXT, "
                "attempts INTEGER NOT NULL, claimed_by VARCHAR(128), "
                "claim_expires_at TIMESTAMP, first_attempt_at TIMESTAMP, "
                "last_attempt_at TIMESTAMP, resolved_at TIMESTAMP, "
                "PRIMARY KEY (integration, event_id))"
            )
        )
        connection.execute(
            text(
                "INSERT INTO delivery_ledger (integration, event_id, nami_user_id, "
                "partition_date, status, reason, attempts) VALUES "
                "('feed', 'e00000', 'user0', '2026-02-01', 'accepted', NULL, 1), "
                "('feed', 'e00001', NULL, '2026-02-01', 'rejected', 'HTTP 400: bad', 2), "
                "('feed', 'e00002', 'user2', '2026-02-01', 'pending', 'gave up', 8)"
            )
        )
    ledger = DeliveryLedger(event_store.engine)
    rows = {row["event_id"]: row for row in ledger.entries("feed")}
    assert {key: (r["status"], r["nami_user_id"], r["attempts"]) for key, r in rows.items()} == {
        "e00000": (ACCEPTED, "user0", 1),
        "e00001": (REJECTED, None, 2),
        "e00002": (PENDING, "user2", 8),
    }
    events = {"user0": ["e00000"], None: ["e00001"], "user2": ["e00002"]}
    assert ledger.claim("feed", DAY, events, worker="w").events == {"e00002": "user2"}


def test_runs_that_cut_their_chunks_differently_share_no_user(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = {f"user{n}": [f"e{n}"] for n in range(1, 9)}

    def some(*numbers: int) -> dict[str | None, list[str]]:
        return {f"user{n}": events[f"user{n}"] for n in numbers}

    first = ledger.claim("feed", DAY, some(1, 2, 3, 4, 5), worker="a")
    assert sorted(first.events) == ["e1", "e2", "e3", "e4", "e5"]
    # Another run's chunk overlaps: it gets only the users outside a's span.
    second = ledger.claim("feed", DAY, some(3, 4, 5, 6, 7, 8), worker="b")
    assert sorted(second.events) == ["e6", "e7", "e8"]
    assert second.users == ["user6", "user7", "user8"]
    # A chunk inside b's span and straddling a's gets nothing.
    assert ledger.claim("feed", DAY, some(4, 7), worker="c").events == {}
    ledger.record("feed", DAY, [OutcomeGroup(ACCEPTED, None, ["e1"])], first.events, worker="a")
    ledger.end_claims("feed", DAY, first.users, worker="a")
    third = ledger.claim("feed", DAY, some(*range(1, 9)), worker="c")
    assert sorted(third.events) == ["e2", "e3", "e4", "e5"]
