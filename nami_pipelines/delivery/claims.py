"""Leases on spans of users: how a run keeps every other run off the events it is sending.

A chunk holds whole users in user order, so what a run is sending is a range of user keys of
one day. It leases that range as one row (`delivery_claims`), not a row per user or per event:
on the benchmark day a user has fewer than two events, and a lease per user cost more than the
sending. Two runs that cut their chunks differently (other chunk sizes, events loaded between
them, other worker spans) can ask for overlapping ranges; the later one then takes only its
users outside the live spans of others, as spans of its own, and leaves the rest to them.

Claims of one (integration, day) are serialized, so two runs never both see a range as free:
on SQLite by the write lock its transaction takes at its start (`writing`), on PostgreSQL by a
transaction-scoped advisory lock on the pair. A span's lease ends when its chunk is done, or
when it expires (a run that died).
"""

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import date, datetime

from sqlalchemy import Connection, and_, delete, exists, insert, select, text

from nami_pipelines.delivery.ledger_tables import delivery_claims

_claims = delivery_claims.c
_PARTITION_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"


def _day_spans(integration: str, day: date):
    return and_(_claims.integration == integration, _claims.partition_date == day)


def lease_users(
    connection: Connection,
    integration: str,
    day: date,
    keys: Sequence[str],
    *,
    worker: str,
    now: datetime,
    expires: datetime,
) -> list[str]:
    """Lease the (sorted, distinct) user keys to `worker` where no other live lease covers
    them; returns the keys it now holds, in order."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(_PARTITION_LOCK), {"key": f"{integration}/{day.isoformat()}"})
    day_spans = _day_spans(integration, day)
    connection.execute(delete(delivery_claims).where(day_spans, _claims.claim_expires_at < now))
    within = and_(_claims.first_user <= keys[-1], _claims.last_user >= keys[0])
    # A worker asking again for what it holds (a re-send) gets it back.
    connection.execute(
        delete(delivery_claims).where(day_spans, within, _claims.claimed_by == worker)
    )
    others = connection.execute(
        select(_claims.first_user, _claims.last_user).where(day_spans, within)
    ).all()
    taken = _outside(keys, others)
    rows = [
        {
            "integration": integration,
            "partition_date": day,
            "claimed_by": worker,
            "first_user": first,
            "last_user": last,
            "claim_expires_at": expires,
        }
        for first, last in _runs(keys, taken)
    ]
    if rows:
        connection.execute(insert(delivery_claims), rows)
    return [key for key in keys if key in taken] if others else list(keys)


def held_test(
    connection: Connection, integration: str, day: date, worker: str
) -> Callable[[str], bool]:
    """Whether `worker` still holds a user key of `day` (its spans read once; locked against a
    take-over until the caller's commit on PostgreSQL)."""
    query = select(_claims.first_user, _claims.last_user).where(
        _day_spans(integration, day), _claims.claimed_by == worker
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    spans = sorted(connection.execute(query).all())
    if len(spans) == 1:
        ((first, last),) = spans
        return lambda key: first <= key <= last
    starts = [first for first, _ in spans]

    def held(key: str) -> bool:
        at = bisect_right(starts, key) - 1
        return at >= 0 and key <= spans[at][1]

    return held


def end_leases(
    connection: Connection, integration: str, day: date, keys: Sequence[str], worker: str
) -> None:
    """End `worker`'s spans within the range of the (sorted) keys: their chunk is done."""
    connection.execute(
        delete(delivery_claims).where(
            _day_spans(integration, day),
            _claims.claimed_by == worker,
            _claims.first_user >= keys[0],
            _claims.last_user <= keys[-1],
        )
    )


def in_live_span(integration: str, user_key_column, now: datetime):
    """For a row with a user key: a live lease of the integration covers it (any day)."""
    return exists().where(
        _claims.integration == integration,
        _claims.claim_expires_at > now,
        _claims.first_user <= user_key_column,
        _claims.last_user >= user_key_column,
    )


def _outside(keys: Sequence[str], spans: Sequence[tuple[str, str]]) -> set[str]:
    return {key for key in keys if not any(first <= key <= last for first, last in spans)}


def _runs(keys: Sequence[str], taken: set[str]) -> list[tuple[str, str]]:
    """The maximal runs of consecutive taken keys, as (first, last)."""
    runs: list[tuple[str, str]] = []
    start: str | None = None
    previous = ""
    for key in keys:
        if key in taken:
            if start is None:
                start = key
            previous = key
        elif start is not None:
            runs.append((start, previous))
            start = None
    if start is not None:
        runs.append((start, previous))
    return runs
