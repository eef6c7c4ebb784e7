"""The event store: one SQL database (SQLite embedded, PostgreSQL in production) behind SQLAlchemy."""

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    insert,
    literal_column,
    or_,
    select,
)

from nami_pipelines.events.driver_rows import driver_rows
from nami_pipelines.events.engine import add_quarantine_content_key, create_store_engine
from nami_pipelines.events.filter import EventFilter
from nami_pipelines.events.model import NamiEvent
from nami_pipelines.events.tables import (
    ROW_POSITIONS,
    metadata,
    nami_events,
    nami_events_quarantine,
    nami_events_sequence,
    nami_events_unsent,
)
from nami_pipelines.events.writes import (
    PRESENCE_QUERY_CHUNK,
    InsertOutcome,
    WriteBatch,
    insert_new_events,
    write_batch,
)

READ_CHUNK_ROWS = 50_000


def to_utc_series(values: pd.Series) -> pd.Series:
    """Timestamps as read back from either database, as UTC-aware pandas datetimes."""
    return pd.to_datetime(values, utc=True, format="ISO8601")


@dataclass(frozen=True, slots=True)
class UserSpan:
    """The users with `after < nami_user_id <= until` (an open end where None), in the
    database's order; `with_missing` adds the events without a user."""

    after: str | None
    until: str | None
    with_missing: bool
    events: int = 0  # how many events the span holds, as the planner counted (or estimated)

    def condition(self) -> ColumnElement[bool]:
        user = nami_events.c.nami_user_id
        bounds = [user > self.after] if self.after is not None else []
        bounds += [user <= self.until] if self.until is not None else []
        within = and_(user.is_not(None), *bounds)
        return or_(within, user.is_(None)) if self.with_missing else within


class EventStore:
    """The `nami_events` table, its quarantine and the load sequence; schema made on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        metadata.create_all(self.engine)
        add_quarantine_content_key(self.engine)
        with self.engine.begin() as connection:
            exists = connection.execute(select(nami_events_sequence.c.sequence_id)).first()
            if exists is None:
                connection.execute(insert(nami_events_sequence).values(sequence_id=1, last_seq=0))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def insert_events(
        self, events: Sequence[NamiEvent], *, source: str, line_numbers: Sequence[int]
    ) -> InsertOutcome:
        """Insert new events with the next `loaded_seq` values, in one serialized transaction
        (duplicates are no-ops, conflicts are returned, not written)."""
        batch = WriteBatch(events, [source] * len(events), line_numbers)
        with self.engine.begin() as connection:
            return insert_new_events(connection, batch)

    def write(self, batch: WriteBatch) -> InsertOutcome:
        """Events, unsent-type events and quarantined lines (conflicts included) in one
        transaction: all committed when this returns, nothing written when it raises."""
        with self.engine.begin() as connection:
            return write_batch(connection, batch)

    def unsent_counts(self) -> dict[str, int]:
        """How many events of each type no destination takes were received (each id once)."""
        query = select(nami_events_unsent.c.event_type, func.count()).group_by(
            nami_events_unsent.c.event_type
        )
        with self.engine.connect() as connection:
            return {kind: int(count) for kind, count in connection.execute(query).all()}

    def quarantined_by_reason(self) -> dict[str, int]:
        """Quarantined rows per reason, most frequent first."""
        count = func.count().label("rows")
        reason = nami_events_quarantine.c.reason
        query = select(reason, count).group_by(reason).order_by(count.desc(), reason)
        with self.engine.connect() as connection:
            return {why: int(rows) for why, rows in connection.execute(query).all()}

    def read_events(
        self,
        *,
        occurred_after: datetime | None = None,
        occurred_until: datetime | None = None,
        loaded_after_seq: int | None = None,
        app_id: str | None = None,
        nami_user_ids: Sequence[str] | None = None,
        chunk_rows: int = READ_CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        """Stream events in chunks, `occurred_after < occurred_at <= occurred_until`.

        Chunks are ordered by `loaded_seq` and bounded in size, so no caller ever holds the whole
        table; `occurred_at` comes back as UTC-aware datetimes on both databases. With
        `nami_user_ids`, only those users' events (queried a slice of users at a time).
        """
        query = select(nami_events).order_by(nami_events.c.loaded_seq)
        if occurred_after is not None:
            query = query.where(nami_events.c.occurred_at > occurred_after)
        if occurred_until is not None:
            query = query.where(nami_events.c.occurred_at <= occurred_until)
        if loaded_after_seq is not None:
            query = query.where(nami_events.c.loaded_seq > loaded_after_seq)
        if app_id is not None:
            query = query.where(nami_events.c.app_id == app_id)
        if nami_user_ids is None:
            yield from self._stream(query, chunk_rows)
            return
        users = list(dict.fromkeys(nami_user_ids))
        for start in range(0, len(users), PRESENCE_QUERY_CHUNK):
            chunk = users[start : start + PRESENCE_QUERY_CHUNK]
            yield from self._stream(query.where(nami_events.c.nami_user_id.in_(chunk)), chunk_rows)

    def read_rows_by_user(
        self,
        *,
        occurred_after: datetime,
        occurred_until: datetime,
        app_id: str,
        chunk_rows: int = READ_CHUNK_ROWS,
        users: UserSpan | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """An app's rows in a window, ordered by user then time (rows without a user first;
        with `users`, only that span's), as plain tuples in the order of `nami_events.columns`
        with `occurred_at` a UTC datetime: for a caller that visits each row once, where a
        DataFrame would cost more to build than the visit. Parts are cut by size: a caller that
        needs whole users re-cuts them."""
        query = _by_user(occurred_after, occurred_until, app_id, users)
        yield from driver_rows(self.engine, query, chunk_rows, ROW_POSITIONS["occurred_at"])

    def user_spans(
        self,
        selected: EventFilter,
        *,
        occurred_after: datetime,
        occurred_until: datetime,
        shares: Sequence[int],
        every: int = 1,
    ) -> list[UserSpan]:
        """Up to `len(shares)` spans of user ids that split the `selected` events in a window
        in about those proportions (a user's events are never split), each with its count of
        them, for workers that each take the next span when free. The events without a user go
        with the first span.

        With `every` > 1 the counts come from one event in `every` (times `every`): on SQLite
        the sample is taken on the time index (by rowid), so only those events are read, which
        is what makes planning a big day cost a tenth of reading it.
        """
        user = nami_events.c.nami_user_id
        sampled = []
        if every > 1:
            number = (
                literal_column("nami_events.rowid")
                if self.dialect == "sqlite"
                else nami_events.c.loaded_seq
            )
            sampled.append(number % every == 0)
        # One pass over the window's users and their counts: the cut points come from the
        # running total (an OFFSET query per cut point would sort the window each time).
        per_user = (
            select(user, func.count())
            .where(
                *selected.conditions(),
                nami_events.c.occurred_at > occurred_after,
                nami_events.c.occurred_at <= occurred_until,
                *sampled,
            )
            .group_by(user)
            .order_by(user.nulls_first())
        )
        with self.engine.connect() as connection:
            counts = connection.execute(per_user).all()
        total = sum(count for _, count in counts)
        # Where each span but the last ends, as a share of all the shares.
        ends = list(itertools.accumulate(shares))[:-1]
        whole = sum(shares)
        points: list[str] = []
        sizes: list[int] = []
        seen = cut = 0
        for name, count in counts:
            seen += count
            if (
                name is not None
                and len(points) < len(ends)
                and seen * whole >= total * ends[len(points)]
                and seen < total
            ):
                points.append(name)
                sizes.append(seen - cut)
                cut = seen
        sizes.append(total - cut)
        bounds: list[str | None] = [None, *points, None]
        return [
            UserSpan(after=after, until=until, with_missing=index == 0, events=events * every)
            for index, ((after, until), events) in enumerate(
                zip(itertools.pairwise(bounds), sizes, strict=True)
            )
        ]

    def read_events_grouped_by_user(
        self,
        *,
        occurred_until: datetime,
        occurred_after: datetime | None = None,
        chunk_rows: int = READ_CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        """Every app's events in a window, ordered by user only, in chunks that never split one
        user's events (events without a user come first or last, as the database sorts nulls).

        A snapshot folds each chunk on its own when no user spans two chunks, so its work and
        memory follow the chunk, not every user seen so far.
        """
        query = select(nami_events).where(nami_events.c.occurred_at <= occurred_until)
        if occurred_after is not None:
            query = query.where(nami_events.c.occurred_at > occurred_after)
        query = query.order_by(nami_events.c.nami_user_id)
        yield from _whole_users(self._stream(query, chunk_rows))

    def _stream(self, query: Any, chunk_rows: int) -> Iterator[pd.DataFrame]:
        names = [column.name for column in nami_events.columns]
        with self.engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(query)
            while rows := result.fetchmany(chunk_rows):
                # Plain tuples: pandas probes each row object for attributes before it converts
                # them, and a probe of SQLAlchemy's `Row` costs an exception per row.
                frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=names)
                frame["occurred_at"] = to_utc_series(frame["occurred_at"])
                yield frame

    def loaded_since(self, after_seq: int, *, limit: int) -> tuple[pd.DataFrame, int]:
        """What arrived after a load position: per (UTC day, app, platform, type) the count, and
        the position reached. At most `limit` rows are read, so a sensor tick stays short; the
        next call continues from the returned position."""
        columns = [nami_events.c[name] for name in ("loaded_seq", "occurred_at", "app_id")]
        columns += [nami_events.c.platform_type, nami_events.c.event_type]
        query = (
            select(*columns)
            .where(nami_events.c.loaded_seq > after_seq)
            .order_by(nami_events.c.loaded_seq)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = pd.DataFrame(
                connection.execute(query).all(),
                columns=["loaded_seq", "occurred_at", "app_id", "platform_type", "event_type"],
            )
        if rows.empty:
            return rows.assign(day=[]), after_seq
        rows["day"] = to_utc_series(rows["occurred_at"]).dt.date
        grouped = (
            rows.groupby(["day", "app_id", "platform_type", "event_type"], dropna=False)
            .size()
            .reset_index(name="events")
        )
        return grouped, int(rows["loaded_seq"].max())

    def latest_contact(self, users: Sequence[str], where: EventFilter) -> pd.DataFrame:
        """Per user with events `where` says, the environment and device of the latest such
        event: where an attribute-only update for the user belongs."""
        conditions = where.conditions()
        columns = ["nami_user_id", "environment", "device_id", "occurred_at", "loaded_seq"]
        frames = []
        with self.engine.connect() as connection:
            for start in range(0, len(users), PRESENCE_QUERY_CHUNK):
                chunk = list(users[start : start + PRESENCE_QUERY_CHUNK])
                query = select(*(nami_events.c[name] for name in columns)).where(
                    *conditions, nami_events.c.nami_user_id.in_(chunk)
                )
                frames.append(pd.DataFrame(connection.execute(query).all(), columns=columns))
        if not frames:
            return pd.DataFrame(columns=["nami_user_id", "environment", "device_id"])
        rows = pd.concat(frames, ignore_index=True)
        rows["occurred_at"] = to_utc_series(rows["occurred_at"])
        rows = rows.sort_values(["nami_user_id", "occurred_at", "loaded_seq"], kind="stable")
        latest = rows.drop_duplicates("nami_user_id", keep="last").set_index("nami_user_id")
        devices = rows[rows["device_id"].notna()].drop_duplicates("nami_user_id", keep="last")
        latest["device_id"] = devices.set_index("nami_user_id")["device_id"].reindex(latest.index)
        return latest[["environment", "device_id"]].reset_index()

    def count_events(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(nami_events)).scalar())

    def count_selected(
        self, where: EventFilter, *, occurred_after: datetime, occurred_until: datetime
    ) -> int:
        """How many events a delivery will consider: the denominator of its progress lines."""
        query = select(func.count()).where(
            *where.conditions(),
            nami_events.c.occurred_at > occurred_after,
            nami_events.c.occurred_at <= occurred_until,
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def count_window(
        self, *, occurred_after: datetime, occurred_until: datetime, up_to: int
    ) -> int:
        """How many events of any app a window holds, counted to `up_to` at most: a read of the
        time index alone, cheap enough to ask before planning anything for a big day."""
        window = (
            select(nami_events.c.occurred_at)
            .where(
                nami_events.c.occurred_at > occurred_after,
                nami_events.c.occurred_at <= occurred_until,
            )
            .limit(up_to)
            .subquery()
        )
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(window)).scalar() or 0)

    def has_events_until(self, instant: datetime) -> bool:
        """Whether any event happened at or before `instant` (an index lookup)."""
        query = select(nami_events.c.event_id).where(nami_events.c.occurred_at <= instant).limit(1)
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def count_quarantined(self) -> int:
        with self.engine.connect() as connection:
            query = select(func.count()).select_from(nami_events_quarantine)
            return int(connection.execute(query).scalar())

    def max_loaded_seq(self) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(select(func.max(nami_events.c.loaded_seq))).scalar()
            return int(value or 0)

    def quarantined_lines(self, limit: int = 1000) -> pd.DataFrame:
        query = (
            select(nami_events_quarantine)
            .order_by(nami_events_quarantine.c.quarantine_id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return pd.read_sql(query, connection)


def _by_user(
    occurred_after: datetime, occurred_until: datetime, app_id: str, users: UserSpan | None
) -> Any:
    """An app's events in a window (of a span of users), by user, then time."""
    return (
        select(nami_events)
        .where(
            nami_events.c.app_id == app_id,
            nami_events.c.occurred_at > occurred_after,
            nami_events.c.occurred_at <= occurred_until,
        )
        .where(*([] if users is None else [users.condition()]))
        .order_by(
            nami_events.c.nami_user_id.nulls_first(),
            nami_events.c.occurred_at,
            nami_events.c.loaded_seq,
        )
    )


def _whole_users(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Re-cut frames ordered by `nami_user_id` so that no user's rows span two of them."""
    pending: pd.DataFrame | None = None
    for frame in frames:
        combined = frame if pending is None else pd.concat([pending, frame], ignore_index=True)
        users = combined["nami_user_id"]
        last_user = users.iloc[-1]
        boundary = (
            len(combined) - int((users == last_user).sum())
            if isinstance(last_user, str)
            else len(combined)
        )
        if boundary == 0:
            pending = combined
            continue
        yield combined.iloc[:boundary].reset_index(drop=True)
        pending = combined.iloc[boundary:].reset_index(drop=True)
    if pending is not None and len(pending):
        yield pending
