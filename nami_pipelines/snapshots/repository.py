"""Reads and writes the daily snapshot tables; the only module here that speaks SQL."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, delete, exists, func, insert, literal, select
from sqlalchemy.engine import Connection

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
from nami_pipelines.snapshots.tables import (
    metadata,
    user_attribute_snapshot_days,
    user_attribute_snapshots,
)

_USERS_PER_QUERY = 1_000
_STORED_COLUMNS = (
    "nami_user_id",
    "external_id",
    *ATTRIBUTE_NAMES,
    "carry_state",
    "next_expiration",
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


class SnapshotRepository:
    """The `user_attribute_snapshots` table (one row per user per day) and its day records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def day_record(self, day: date) -> DayRecord | None:
        query = select(user_attribute_snapshot_days).where(
            user_attribute_snapshot_days.c.partition_date == day
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
        """True when an event of the day or before was loaded after the day was computed."""
        query = select(
            exists().where(
                and_(
                    nami_events.c.loaded_seq > record.basis_loaded_seq,
                    nami_events.c.occurred_at <= day_end,
                )
            )
        )
        with self.engine.connect() as connection:
            return bool(connection.execute(query).scalar())

    def users_expiring(self, day: date, until: datetime) -> list[str]:
        """Users of `day` whose earliest upcoming expiration falls at or before `until`."""
        table = user_attribute_snapshots
        query = select(table.c.nami_user_id).where(
            table.c.partition_date == day, table.c.next_expiration <= until
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def read_rows(self, day: date, users: Iterable[str] | None = None) -> pd.DataFrame:
        """Stored rows of a day, for all users or the given ones."""
        table = user_attribute_snapshots
        columns = [table.c[name] for name in _STORED_COLUMNS]
        base = select(*columns).where(table.c.partition_date == day)
        frames: list[pd.DataFrame] = []
        with self.engine.connect() as connection:
            if users is None:
                frames.append(_frame(connection, base.order_by(table.c.nami_user_id)))
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
        rows: pd.DataFrame,
        *,
        carry_from: date | None,
        basis_loaded_seq: int,
        mode: str,
    ) -> int:
        """Replace a day atomically: the given rows, plus every other user of `carry_from`
        copied inside the database (their attributes did not change). Returns the user count."""
        table = user_attribute_snapshots
        records: list[dict[str, Any]] = [
            {**record, "partition_date": day} for record in _records(rows)
        ]
        with self.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.partition_date == day))
            if records:
                connection.execute(insert(table), records)
            if carry_from is not None:
                previous = table.alias("previous")
                current = table.alias("current")
                copied = select(
                    literal(day, type_=table.c.partition_date.type),
                    *(previous.c[name] for name in _STORED_COLUMNS),
                ).where(
                    previous.c.partition_date == carry_from,
                    ~exists().where(
                        current.c.partition_date == day,
                        current.c.nami_user_id == previous.c.nami_user_id,
                    ),
                )
                connection.execute(
                    insert(table).from_select(["partition_date", *_STORED_COLUMNS], copied)
                )
            users = int(
                connection.execute(
                    select(func.count()).select_from(table).where(table.c.partition_date == day)
                ).scalar()
            )
            days = user_attribute_snapshot_days
            connection.execute(delete(days).where(days.c.partition_date == day))
            connection.execute(
                insert(days).values(
                    partition_date=day,
                    users=users,
                    basis_loaded_seq=basis_loaded_seq,
                    mode=mode,
                    computed_at=datetime.now(UTC),
                )
            )
        return users

    def summary(self, day: date) -> SnapshotSummary:
        table = user_attribute_snapshots
        query = select(
            func.count(),
            func.count().filter(table.c[ACTIVE_ENTITLEMENTS] != "[]"),
            func.count().filter(table.c[IN_TRIAL_PERIOD].is_(True)),
            func.count().filter(table.c[IN_GRACE_PERIOD].is_(True)),
            func.count().filter(table.c[FORMER_SUBSCRIBER].is_(True)),
        ).where(table.c.partition_date == day)
        with self.engine.connect() as connection:
            values = connection.execute(query).one()
        return SnapshotSummary(*(int(value) for value in values))

    def duplicate_user_rows(self, day: date) -> int:
        """Rows beyond one per user for a day (the primary key makes this 0 unless corrupted)."""
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


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values for the driver (NaT and NaN become None)."""
    frame = rows[list(_STORED_COLUMNS)].astype(object)
    frame = frame.where(pd.notna(frame), None)
    records = frame.to_dict("records")
    for record in records:
        expiration = record["next_expiration"]
        if expiration is not None:
            record["next_expiration"] = expiration.to_pydatetime()
    return records
