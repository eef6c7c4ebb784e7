"""Reads and writes the daily snapshot tables; the only module here that speaks SQL.

A day stores only the rows of the users it recomputed (see snapshots.tables), so every read of
day D takes, per user, the latest row at or before D, and the day's counts live in its record.
"""

from collections.abc import Iterable
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Engine,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Alias

from nami_pipelines.events.store import to_utc_series
from nami_pipelines.events.tables import nami_events
from nami_pipelines.snapshots.attributes import (
    ACTIVE_ENTITLEMENTS,
    ATTRIBUTE_NAMES,
    FORMER_SUBSCRIBER,
    IN_GRACE_PERIOD,
    IN_TRIAL_PERIOD,
)
from nami_pipelines.snapshots.codec import snapshot_from_rows
from nami_pipelines.snapshots.days import day_end
from nami_pipelines.snapshots.tables import (
    metadata,
    user_attribute_snapshot_days,
    user_attribute_snapshots,
)

_USERS_PER_QUERY = 1_000
_ROWS_PER_INSERT = 10_000
_STORED_COLUMNS = (
    "nami_user_id",
    "external_id",
    *ATTRIBUTE_NAMES,
    "carry_state",
    "next_expiration",
)
_RECORD_COLUMNS = ("partition_date", "users", "basis_loaded_seq", "mode", "computed_at")
_COUNT_COLUMNS = (
    "users",
    "active_subscribers",
    "in_trial",
    "in_grace_period",
    "former_subscribers",
)


@dataclass(frozen=True, slots=True)
class DayRecord:
    """What is known of a stored day: how it was computed and which events it includes."""

    partition_date: date
    users: int
    basis_loaded_seq: int
    mode: str
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """Counts shown in the UI for a day's snapshot."""

    users: int
    active_subscribers: int
    in_trial: int
    in_grace_period: int
    former_subscribers: int

    def __add__(self, other: "SnapshotSummary") -> "SnapshotSummary":
        return SnapshotSummary(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


NO_USERS = SnapshotSummary(0, 0, 0, 0, 0)


def summary_of_rows(rows: pd.DataFrame) -> SnapshotSummary:
    """The counts over stored rows (as `read_rows` returns them), in `_counts`' terms."""
    return SnapshotSummary(
        users=len(rows),
        active_subscribers=int((rows[ACTIVE_ENTITLEMENTS] != "[]").sum()),
        in_trial=int(rows[IN_TRIAL_PERIOD].astype(bool).sum()),
        in_grace_period=int(rows[IN_GRACE_PERIOD].astype(bool).sum()),
        former_subscribers=int(rows[FORMER_SUBSCRIBER].astype(bool).sum()),
    )


@dataclass(frozen=True, slots=True)
class CarriedFrom:
    """The stored day an incremental day starts from, and the counts over that day's rows of
    the users it recomputes: their new rows replace those, so they leave the day's counts."""

    day: date
    replaced: SnapshotSummary


def _in_snapshot_of(rows: Table | Alias, day: date) -> ColumnElement[bool]:
    """True for the rows of `rows` that make up the snapshot of `day`: it is stored and the row
    is its user's latest at or before it. A correlated maximum rather than NOT EXISTS, so that
    PostgreSQL seeks the primary key per row instead of hashing the whole table's history."""
    candidate = user_attribute_snapshots.alias("candidate")
    days = user_attribute_snapshot_days
    latest = (
        select(func.max(candidate.c.partition_date))
        .where(
            candidate.c.nami_user_id == rows.c.nami_user_id,
            candidate.c.partition_date <= day,
        )
        .scalar_subquery()
    )
    return and_(
        exists().where(days.c.partition_date == day),
        rows.c.partition_date == latest,
    )


def _counts(rows: Table | Alias) -> tuple[ColumnElement[Any], ...]:
    """The `SnapshotSummary` counts over `rows`, in `_COUNT_COLUMNS` order."""
    return (
        func.count(),
        func.count().filter(rows.c[ACTIVE_ENTITLEMENTS] != "[]"),
        func.count().filter(rows.c[IN_TRIAL_PERIOD].is_(True)),
        func.count().filter(rows.c[IN_GRACE_PERIOD].is_(True)),
        func.count().filter(rows.c[FORMER_SUBSCRIBER].is_(True)),
    )


class SnapshotRepository:
    """The `user_attribute_snapshots` table (a user's row per day it was recomputed) and the
    day records with each day's counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def day_record(self, day: date) -> DayRecord | None:
        days = user_attribute_snapshot_days
        query = select(*(days.c[name] for name in _RECORD_COLUMNS)).where(
            days.c.partition_date == day
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return DayRecord(**row) if row else None

    def latest_day(self) -> date | None:
        """The most recent day that has a stored snapshot."""
        days = user_attribute_snapshot_days
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(days.c.partition_date))).scalar()

    def is_stale(self, record: DayRecord, day_end: datetime) -> bool:
        """True when an event of the day or before was loaded after the day was computed.

        The load range is bounded on both sides so that a planner without statistics (SQLite)
        walks the few events loaded since, not every event of history up to the day.
        """
        newest = select(func.max(nami_events.c.loaded_seq)).scalar_subquery()
        query = select(
            exists().where(
                nami_events.c.loaded_seq > record.basis_loaded_seq,
                nami_events.c.loaded_seq <= newest,
                nami_events.c.occurred_at <= day_end,
            )
        )
        with self.engine.connect() as connection:
            return bool(connection.execute(query).scalar())

    def users_expiring(self, day: date, until: datetime) -> list[str]:
        """Users of `day` whose earliest upcoming expiration falls at or before `until`.

        Every row in day D's snapshot expires after D's end (a user whose expiration falls in a
        day is recomputed that day), so the lower bound selects nothing more; it keeps the index
        range to the window instead of every expiration in history.
        """
        table = user_attribute_snapshots
        query = select(table.c.nami_user_id).where(
            table.c.next_expiration > day_end(day),
            table.c.next_expiration <= until,
            _in_snapshot_of(table, day),
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def read_rows(self, day: date, users: Iterable[str] | None = None) -> pd.DataFrame:
        """Stored rows of a day's snapshot, for all users or the given ones."""
        table = user_attribute_snapshots
        columns = [table.c[name] for name in _STORED_COLUMNS]
        base = select(*columns).where(_in_snapshot_of(table, day))
        frames: list[pd.DataFrame] = []
        with self.engine.connect() as connection:
            if users is None:
                frames.append(_frame(connection, base))
            else:
                wanted = list(users)
                for start in range(0, len(wanted), _USERS_PER_QUERY):
                    chunk = wanted[start : start + _USERS_PER_QUERY]
                    frames.append(_frame(connection, base.where(table.c.nami_user_id.in_(chunk))))
        if not frames:
            return pd.DataFrame(columns=list(_STORED_COLUMNS))
        return pd.concat(frames, ignore_index=True).sort_values("nami_user_id", ignore_index=True)

    def read_snapshot(self, day: date) -> pd.DataFrame:
        """The stored attribute values of a day, as lists and booleans."""
        rows = self.read_rows(day)
        return snapshot_from_rows(rows.drop(columns=["carry_state", "next_expiration"]))

    def write_day(
        self,
        day: date,
        parts: Iterable[pd.DataFrame],
        *,
        carried: CarriedFrom | None,
        basis_loaded_seq: int,
        mode: str,
    ) -> int:
        """Replace a day atomically with the rows of `parts`. Without `carried`, they are every
        user; with it, only the users recomputed since that stored day, everyone else keeping
        their row of it or earlier: the day's counts are then that day's, minus the replaced
        rows', plus the new rows'. Returns the user count."""
        table = user_attribute_snapshots
        days = user_attribute_snapshot_days
        with self.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.partition_date == day))
            for rows in parts:
                for start in range(0, len(rows), _ROWS_PER_INSERT):
                    part = rows.iloc[start : start + _ROWS_PER_INSERT]
                    connection.execute(insert(table), _records(part, day))
            written = select(*_counts(table)).where(table.c.partition_date == day)
            counts = list(connection.execute(written).one())
            if carried is not None:
                base_query = select(*(days.c[name] for name in _COUNT_COLUMNS)).where(
                    days.c.partition_date == carried.day
                )
                base = connection.execute(base_query).one()
                gone = astuple(carried.replaced)
                counts = [
                    int(before) + int(now) - int(replaced)
                    for before, now, replaced in zip(base, counts, gone, strict=True)
                ]
            connection.execute(delete(days).where(days.c.partition_date == day))
            connection.execute(
                insert(days).values(
                    partition_date=day,
                    **dict(zip(_COUNT_COLUMNS, (int(count) for count in counts), strict=True)),
                    basis_loaded_seq=basis_loaded_seq,
                    mode=mode,
                    computed_at=datetime.now(UTC),
                )
            )
        return int(counts[0])

    def summary(self, day: date) -> SnapshotSummary:
        days = user_attribute_snapshot_days
        query = select(*(days.c[name] for name in _COUNT_COLUMNS)).where(
            days.c.partition_date == day
        )
        with self.engine.connect() as connection:
            values = connection.execute(query).first()
        return SnapshotSummary(*(int(value) for value in values or (0,) * len(_COUNT_COLUMNS)))

    def duplicate_user_rows(self, day: date) -> int:
        """Rows beyond one per user among those a day stored. The primary key makes this 0, and
        a day's snapshot takes one row per user from them, unless the table is corrupted."""
        table = user_attribute_snapshots
        query = select(func.count() - func.count(table.c.nami_user_id.distinct())).where(
            table.c.partition_date == day
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def users_with_events_until(self, day_end: datetime) -> int:
        """Distinct users with an event at or before `day_end`: the rows a day must have."""
        query = select(func.count(nami_events.c.nami_user_id.distinct())).where(
            nami_events.c.occurred_at <= day_end
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)


def _frame(connection: Connection, query: Any) -> pd.DataFrame:
    result = connection.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    frame["next_expiration"] = to_utc_series(frame["next_expiration"])
    return frame


def _records(rows: pd.DataFrame, day: date) -> list[dict[str, Any]]:
    """Rows of `day` as plain Python values for the driver (NaT and NaN become None)."""
    frame = rows[list(_STORED_COLUMNS)].astype(object)
    frame = frame.where(pd.notna(frame), None)
    records = frame.to_dict("records")
    for record in records:
        record["partition_date"] = day
        expiration = record["next_expiration"]
        if expiration is not None:
            record["next_expiration"] = expiration.to_pydatetime()
    return records
