"""The delivery ledger: claims are exclusive, outcomes stick, re-sends are explicit."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from nami_pipelines.delivery.ledger import PENDING, Candidate, DeliveryLedger
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, OutcomeGroup

DAY = date(2026, 2, 1)


def candidates(count: int, prefix: str = "e") -> list[Candidate]:
    return [Candidate(f"{prefix}{n:05d}", f"user{n % 7}", DAY) for n in range(count)]


def test_claim_record_and_never_claim_an_outcome_again(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = candidates(5)
    assert ledger.claim("feed", events, worker="w1") == [c.event_id for c in events]
    ledger.record(
        "feed",
        [
            OutcomeGroup(ACCEPTED, None, ("e00000",)),
            OutcomeGroup(REJECTED, "HTTP 400: bad", ("e00001",)),
            OutcomeGroup(SKIPPED, "no external_id", ("e00002",)),
        ],
        worker="w1",
    )
    # Another run (or a re-run) claims only what has no outcome and no live lease.
    assert ledger.claim("feed", events, worker="w2") == []
    counts = ledger.status_counts("feed", DAY)
    assert counts == {PENDING: 2, ACCEPTED: 1, REJECTED: 1, SKIPPED: 1}
    rows = {row["event_id"]: row for row in ledger.entries("feed")}
    assert rows["e00001"]["reason"] == "HTTP 400: bad"
    assert rows["e00000"]["attempts"] == 1 and rows["e00000"]["resolved_at"] is not None
    # Integrations are independent: the same events are new for another one.
    assert len(ledger.claim("other_feed", events, worker="w2")) == 5


def test_expired_lease_is_claimed_again_and_release_keeps_events_pending(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = candidates(3)
    ledger.claim("feed", events, worker="dead", lease=timedelta(seconds=-1))
    assert len(ledger.claim("feed", events, worker="alive")) == 3
    ledger.release("feed", ["e00000"], worker="alive", reason="gave up", attempts=8)
    row = ledger.entries("feed", ["e00000"])[0]
    assert (row["status"], row["reason"], row["attempts"], row["claimed_by"]) == (
        PENDING,
        "gave up",
        8,
        None,
    )
    assert ledger.claim("feed", events[:1], worker="later") == ["e00000"]


def test_outcome_from_a_worker_that_lost_its_lease_is_ignored(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = candidates(1)
    ledger.claim("feed", events, worker="slow", lease=timedelta(seconds=-1))
    ledger.claim("feed", events, worker="fast")
    ledger.record("feed", [OutcomeGroup(REJECTED, "late", ("e00000",))], worker="slow")
    assert ledger.entries("feed")[0]["status"] == PENDING
    ledger.record("feed", [OutcomeGroup(ACCEPTED, None, ("e00000",))], worker="fast")
    assert ledger.entries("feed")[0]["status"] == ACCEPTED


def test_resend_is_explicit(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = candidates(2)
    ledger.claim("feed", events, worker="w1")
    ledger.record("feed", [OutcomeGroup(ACCEPTED, None, [c.event_id for c in events])], worker="w1")
    assert ledger.claim("feed", events, worker="w2") == []
    assert sorted(ledger.claim("feed", events, worker="w2", resend=True)) == ["e00000", "e00001"]


def test_concurrent_claims_are_disjoint_and_complete(event_store):
    ledger = DeliveryLedger(event_store.engine)
    events = candidates(600)

    def claim_in_slices(worker: str) -> list[str]:
        claimed: list[str] = []
        for start in range(0, len(events), 50):
            claimed += ledger.claim("feed", events[start : start + 50], worker=worker)
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
