"""The write side of the event store: new events, unsent-type events and quarantined lines, all
in one transaction, so a load chunk or a group of webhooks is either committed whole or not at all.

Writers lock the sequence row first; the lock serializes them, so rows become visible in
`loaded_seq` order (a sensor's cursor never skips a row committed late).
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Insert, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from nami_pipelines.events.model import NamiEvent, QuarantinedLine, UnsentEvent
from nami_pipelines.events.tables import (
    nami_events,
    nami_events_quarantine,
    nami_events_sequence,
    nami_events_unsent,
)

PRESENCE_QUERY_CHUNK = 500
CONFLICT_REASON = "duplicate event_id with different content"

EventFate = Literal["loaded", "duplicate", "conflict"]


@dataclass(slots=True)
class InsertOutcome:
    """What happened to a chunk of validated events, in total and per event (in input order)."""

    loaded: int = 0
    duplicates: int = 0
    conflicts: list[QuarantinedLine] = field(default_factory=list)
    fates: list[EventFate] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Everything one transaction writes. `line_numbers` and `sources` go with `events` (where a
    conflicting event is reported from)."""

    events: Sequence[NamiEvent] = ()
    sources: Sequence[str] = ()
    line_numbers: Sequence[int] = ()
    unsent: Sequence[UnsentEvent] = ()
    quarantined: Sequence[QuarantinedLine] = ()


def content_key(line: QuarantinedLine) -> str:
    """Where a quarantined line came from and what it said, hashed: its identity on reload."""
    text = f"{line.source}\x00{line.line_number}\x00{line.raw_line}"
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def write_batch(connection: Connection, batch: WriteBatch) -> InsertOutcome:
    """Write a batch inside the caller's transaction; conflicts are quarantined in it too."""
    outcome = insert_new_events(connection, batch)
    _insert_ignoring_present(
        connection,
        nami_events_unsent,
        _unsent_rows(batch.unsent),
        key="event_id",
    )
    quarantined = [*batch.quarantined, *outcome.conflicts]
    _insert_ignoring_present(
        connection, nami_events_quarantine, _quarantine_rows(quarantined), key="content_key"
    )
    return outcome


def insert_new_events(connection: Connection, batch: WriteBatch) -> InsertOutcome:
    """An `event_id` already stored with the same content is a duplicate (a reload or a retry is
    a no-op); with different content it is a conflict, quarantined rather than overwritten. An
    id repeated within the batch is compared with its first occurrence."""
    outcome = InsertOutcome()
    if not batch.events:
        return outcome
    rows = [event.row() for event in batch.events]
    first_of_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        first_of_id.setdefault(row["event_id"], row)
    if connection.dialect.name == "postgresql":
        stored, inserted = _insert_fresh_on_postgresql(connection, list(first_of_id.values()))
    else:
        stored, inserted = _insert_fresh(connection, first_of_id)
    for index, row in enumerate(rows):
        event_id = row["event_id"]
        previous = stored.get(event_id)
        if previous is None and event_id in inserted and first_of_id[event_id] is row:
            outcome.fates.append("loaded")
        elif _same_content(previous or first_of_id[event_id], row):
            outcome.duplicates += 1
            outcome.fates.append("duplicate")
        else:
            outcome.fates.append("conflict")
            outcome.conflicts.append(
                QuarantinedLine(
                    source=batch.sources[index],
                    line_number=batch.line_numbers[index],
                    raw_line=_describe(row),
                    reason=CONFLICT_REASON,
                    event_id=event_id,
                )
            )
    outcome.loaded = len(inserted)
    return outcome


def _insert_fresh(
    connection: Connection, first_of_id: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict], set[str]]:
    """Under the sequence lock: the rows already stored, then the others inserted with the next
    numbers; returns the stored rows and the ids inserted."""
    last_seq = _lock_sequence(connection)
    stored = _stored_rows(connection, list(first_of_id))
    new_rows = []
    for event_id, row in first_of_id.items():
        if event_id not in stored:
            last_seq += 1
            new_rows.append({**row, "loaded_seq": last_seq})
    if new_rows:
        connection.execute(insert(nami_events), new_rows)
        connection.execute(update(nami_events_sequence).values(last_seq=last_seq))
    return stored, {row["event_id"] for row in new_rows}


_STORED_COLUMNS = ", ".join(c.name for c in nami_events.columns if c.name != "loaded_seq")
_NULLS_AFTER_EVENT_ID = ", ".join(["NULL"] * (len(_STORED_COLUMNS.split(", ")) - 1))
_INSERT_FRESH_ON_POSTGRESQL = text(
    f"""
    WITH incoming AS (
        SELECT * FROM json_populate_recordset(NULL::nami_events, CAST(:rows AS json))
        WITH ORDINALITY
    ),
    fresh AS (
        SELECT incoming.*, row_number() OVER (ORDER BY ordinality) AS position FROM incoming
        WHERE NOT EXISTS (SELECT 1 FROM nami_events AS e WHERE e.event_id = incoming.event_id)
    ),
    advanced AS (
        UPDATE nami_events_sequence SET last_seq = last_seq + (SELECT count(*) FROM fresh)
        RETURNING last_seq - (SELECT count(*) FROM fresh) AS base
    ),
    inserted AS (
        INSERT INTO nami_events ({_STORED_COLUMNS}, loaded_seq)
        SELECT {_STORED_COLUMNS}, advanced.base + fresh.position FROM fresh CROSS JOIN advanced
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id, loaded_seq
    )
    SELECT {_STORED_COLUMNS}, NULL AS loaded_seq FROM nami_events
    WHERE event_id IN (SELECT event_id FROM incoming)
    UNION ALL
    SELECT inserted.event_id, {_NULLS_AFTER_EVENT_ID}, inserted.loaded_seq FROM inserted
    """
)


def _insert_fresh_on_postgresql(
    connection: Connection, rows: list[dict[str, Any]]
) -> tuple[dict[str, dict], set[str]]:
    """Lock the sequence, insert the rows whose id is not stored with the next numbers in
    order, and advance the sequence, in one statement: each round trip is a large part of a
    webhook group's commit. Returns the rows already stored and the ids inserted.

    The statement reads with one snapshot, taken before it waits for the sequence lock; the
    UPDATE then reads the sequence as the writer before it committed it, so numbers still follow
    commit order. A row another writer committed in between is not inserted (`ON CONFLICT`); it
    costs a gap in `loaded_seq` and one more query to compare it. `rows` hold each id once."""
    document = orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()
    stored: dict[str, dict] = {}
    inserted: set[str] = set()
    for row in connection.execute(_INSERT_FRESH_ON_POSTGRESQL, {"rows": document}).mappings():
        if row["loaded_seq"] is None:
            stored[row["event_id"]] = {key: row[key] for key in row if key != "loaded_seq"}
        else:
            inserted.add(row["event_id"])
    raced = [
        row["event_id"]
        for row in rows
        if row["event_id"] not in stored and row["event_id"] not in inserted
    ]
    if raced:
        stored.update(_stored_rows(connection, raced))
    return stored, inserted


def _lock_sequence(connection: Connection) -> int:
    """Take the sequence row's lock (held to the commit) and read the last number handed out:
    one round trip where the database can return what it updated."""
    lock = update(nami_events_sequence).values(last_seq=nami_events_sequence.c.last_seq)
    if connection.dialect.update_returning:
        return int(connection.execute(lock.returning(nami_events_sequence.c.last_seq)).scalar_one())
    connection.execute(lock)
    return int(connection.execute(select(nami_events_sequence.c.last_seq)).scalar_one())


def _stored_rows(connection: Connection, event_ids: list[str]) -> dict[str, dict]:
    columns = [c for c in nami_events.columns if c.name != "loaded_seq"]
    found: dict[str, dict] = {}
    unique_ids = list(dict.fromkeys(event_ids))
    for start in range(0, len(unique_ids), PRESENCE_QUERY_CHUNK):
        chunk = unique_ids[start : start + PRESENCE_QUERY_CHUNK]
        query = select(*columns).where(nami_events.c.event_id.in_(chunk))
        for row in connection.execute(query).mappings():
            found[row["event_id"]] = dict(row)
    return found


def _unsent_rows(events: Sequence[UnsentEvent]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows = {
        event.event_id: {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "app_id": event.app_id,
            "received_at": now,
        }
        for event in events
    }
    return list(rows.values())


def _quarantine_rows(lines: Sequence[QuarantinedLine]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        key = content_key(line)
        rows[key] = {
            "source": line.source,
            "line_number": line.line_number,
            "event_id": line.event_id,
            "reason": line.reason,
            "raw_line": line.raw_line,
            "quarantined_at": now,
            "content_key": key,
        }
    return list(rows.values())


def _insert_ignoring_present(
    connection: Connection, table: Any, rows: list[dict[str, Any]], *, key: str
) -> None:
    """Insert rows whose `key` is not stored yet (a unique column); the others are left as is."""
    if not rows:
        return
    statement: Insert
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])
    connection.execute(statement, rows)


def _normalized(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC)
    return value


def _same_content(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    return all(_normalized(stored[key]) == _normalized(incoming[key]) for key in incoming)


def _describe(row: dict[str, Any]) -> str:
    return json.dumps({**row, "occurred_at": row["occurred_at"].isoformat()})
