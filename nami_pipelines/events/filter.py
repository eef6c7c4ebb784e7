"""Which rows of `nami_events` a reader wants: one app's events, optionally only some types and
one platform.

A plain value, so a caller can say what it reads without the store knowing why: whoever knows
the integrations builds it, and the store applies it without knowing any. The rule is written
here once, as SQL for the queries that count in the database, on frames, and on the plain rows
delivery reads, so they cannot drift apart.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement

from nami_pipelines.events.tables import ROW_POSITIONS, nami_events


@dataclass(frozen=True, slots=True)
class EventFilter:
    """`app_id` always; `event_types` None for every type, `platform_type` None for every
    platform (an event whose platform is unknown then counts too)."""

    app_id: str
    event_types: tuple[str, ...] | None = None
    platform_type: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The rule as `WHERE` conditions on `nami_events`."""
        conditions = [nami_events.c.app_id == self.app_id]
        if self.event_types is not None:
            conditions.append(nami_events.c.event_type.in_(self.event_types))
        if self.platform_type is not None:
            conditions.append(nami_events.c.platform_type == self.platform_type)
        return conditions

    def matches(self, rows: pd.DataFrame) -> pd.Series:
        """The rule on rows with `app_id`, `event_type` and `platform_type` columns."""
        chosen = rows["app_id"] == self.app_id
        if self.event_types is not None:
            chosen &= rows["event_type"].isin(self.event_types)
        if self.platform_type is not None:
            chosen &= rows["platform_type"] == self.platform_type
        return chosen

    def row_test(self) -> Callable[[tuple[Any, ...]], bool]:
        """The rule on rows as `EventStore.read_rows_by_user` gives them (tuples in the order
        of `nami_events.columns`), built once so that testing a row is a few lookups."""
        app, kind, platform = (
            ROW_POSITIONS[name] for name in ("app_id", "event_type", "platform_type")
        )
        app_id, wanted = self.app_id, self.platform_type
        types = frozenset(self.event_types) if self.event_types is not None else None
        if types is None and wanted is None:
            return lambda row: row[app] == app_id
        if wanted is None:
            return lambda row: row[app] == app_id and row[kind] in types
        if types is None:
            return lambda row: row[app] == app_id and row[platform] == wanted
        return lambda row: row[app] == app_id and row[kind] in types and row[platform] == wanted
