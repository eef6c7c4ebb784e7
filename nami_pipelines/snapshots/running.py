"""One user's attribute state as plain Python, moved forward one event at a time.

Delivery reads a day's events grouped by user and in time order. Folding each event into its
user's `RunningState` as it passes gives the attributes as of every `user.*` event (the state
just after it, read at its own instant) and, once the user's events are done, the attributes
at any later instant, without a second pass. It holds the same facts as a `SnapshotState` row
(docs/attributes.md): the latest `user.*` event's journey flags and entitlements, every device
with its latest platform, whether the user ever paid, and the latest external id.

Events must come in key order (`occurred_at`, then `loaded_seq`) and after whatever the state
was seeded with: each new fact simply replaces the older one.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import pandas as pd

from nami_pipelines.event_types import is_user_event
from nami_pipelines.snapshots.attributes import (
    ACTIVE_ENTITLEMENTS,
    ACTIVE_SKUS,
    DEVICE_IDS,
    DEVICE_PLATFORMS,
    UserAttributes,
    attribute_flags,
    pays_now,
)
from nami_pipelines.snapshots.state import JOURNEY_FLAGS, USER, SnapshotState, user_rows

# (entitlement_ref_id, sku_ref_id, expiration): one entitlement listed by a `user.*` event.
Entitlement = tuple[str, str | None, datetime | None]
_NO_JOURNEY = (False, False, False, False)


@dataclass(slots=True)
class RunningState:
    """What one user's attributes depend on, as of the last event folded in."""

    external_id: str | None = None
    journey: tuple[bool, bool, bool, bool] = _NO_JOURNEY
    entitlements: list[Entitlement] = field(default_factory=list)
    devices: dict[str, str | None] = field(default_factory=dict)
    once_paid: bool = False

    def copy(self) -> "RunningState":
        return RunningState(
            self.external_id, self.journey, self.entitlements, dict(self.devices), self.once_paid
        )

    def fold(
        self,
        event_type: str,
        occurred_at: datetime,
        external_id: str | None,
        device_id: str | None,
        app_platform_id: str | None,
        payload: dict[str, Any],
    ) -> bool:
        """Move the state past one event; True when it was a `user.*` event (whose attributes
        are then `attributes_at(occurred_at)`)."""
        self.see(external_id, device_id, app_platform_id)
        if not is_user_event(event_type):
            return False
        self.fold_user_event(occurred_at, app_platform_id, payload)
        return True

    def see(self, external_id: str | None, device_id: str | None, platform: str | None) -> None:
        """What every event tells: the user's external id and the device it came from."""
        if external_id is not None:
            self.external_id = external_id
        if device_id is not None:
            self.devices[device_id] = platform

    def fold_user_event(
        self, occurred_at: datetime, app_platform_id: str | None, payload: dict[str, Any]
    ) -> None:
        """What a `user.*` event adds, after `see`: its devices, and it becomes the latest
        user event (journey flags and entitlements)."""
        # Its `devices[]` entry (which names its own platform) outranks the row's `device_id`.
        for device in payload.get("devices") or ():
            self.devices[device["id"]] = (device.get("platform") or {}).get("id") or app_platform_id
        journey = payload.get("customer_journey_state") or {}
        former, grace, trial, intro = JOURNEY_FLAGS
        self.journey = (
            bool(journey.get(former, False)),
            bool(journey.get(grace, False)),
            bool(journey.get(trial, False)),
            bool(journey.get(intro, False)),
        )
        self.entitlements = [
            (item["entitlement_ref_id"], item.get("sku_ref_id"), expiration(item.get("expiration")))
            for item in payload.get("active_entitlements") or ()
        ]
        if not self.once_paid:
            self.once_paid = pays_now(self._has_active(occurred_at), self.journey[2])

    def _has_active(self, at: datetime) -> bool:
        return any(until is None or until > at for _, _, until in self.entitlements)

    def attributes_at(self, at: datetime) -> UserAttributes:
        """The eight attribute values at instant `at` (no event between the last one and `at`).
        One loop over the entitlements: delivery asks this for every `user.*` event it sends."""
        refs: set[str] = set()
        skus: set[str] = set()
        for ref, sku, until in self.entitlements:
            if until is None or until > at:
                refs.add(ref)
                if sku is not None:
                    skus.add(sku)
        devices = self.devices
        device_ids = sorted(devices)
        return {
            ACTIVE_ENTITLEMENTS: sorted(refs),
            ACTIVE_SKUS: sorted(skus),
            DEVICE_IDS: device_ids,
            DEVICE_PLATFORMS: [
                platform if isinstance(platform := devices[device], str) else ""
                for device in device_ids
            ],
            **attribute_flags(self.journey, bool(refs), self.once_paid),
        }


@lru_cache(maxsize=65_536)
def expiration(text: Any) -> datetime | None:
    """An entitlement's expiration as a UTC instant (a time without a zone counts as UTC), as
    the columnar snapshot reads it; cached, since many events list the same one."""
    if text is None:
        return None
    if isinstance(text, str):
        # ISO 8601, as Nami writes it: the standard parser reads it some fifty times faster
        # than pandas, to the same instant; anything else goes to pandas, as before.
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    moment = pd.Timestamp(text)
    moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment.tz_convert(UTC)
    return moment.to_pydatetime()


def _none_if_missing(value: Any) -> Any:
    return None if value is None or value is pd.NaT or value != value else value


def running_states(state: SnapshotState, users: Iterable[str]) -> dict[str, RunningState]:
    """The `users`' running states from a stored `SnapshotState` (users it does not know start
    empty): the seed for folding the events after it."""
    wanted = set(users)
    states = {user: RunningState() for user in wanted}
    table = state.users[state.users[USER].isin(wanted)]
    columns = [table[name].tolist() for name in (USER, "external_id", *JOURNEY_FLAGS, "once_paid")]
    for user, external_id, former, grace, trial, intro, once_paid in zip(*columns, strict=True):
        running = states[user]
        running.external_id = _none_if_missing(external_id)
        running.journey = (bool(former), bool(grace), bool(trial), bool(intro))
        running.once_paid = bool(once_paid)
    entitlements = state.entitlements[state.entitlements[USER].isin(wanted)]
    for user, ref, sku, until in zip(
        entitlements[USER].tolist(),
        entitlements["entitlement_ref_id"].tolist(),
        entitlements["sku_ref_id"].tolist(),
        entitlements["expiration"].tolist(),
        strict=True,
    ):
        until = _none_if_missing(until)
        states[user].entitlements.append(
            (ref, _none_if_missing(sku), None if until is None else until.to_pydatetime())
        )
    devices = state.devices[state.devices[USER].isin(wanted)]
    for user, device, platform in zip(
        devices[USER].tolist(),
        devices["device_id"].tolist(),
        devices["platform_id"].tolist(),
        strict=True,
    ):
        states[user].devices[device] = _none_if_missing(platform)
    return states


def fold_events(states: dict[str, RunningState], events: pd.DataFrame) -> dict[str, UserAttributes]:
    """Fold events (columns of `nami_events`, in any order) into the states of their users,
    which must all be in `states`; returns the attributes as of each `user.*` event by id.
    Rows without a `nami_user_id` belong to no user and are left out."""
    events = user_rows(events).sort_values([USER, "occurred_at", "loaded_seq"], kind="stable")
    found: dict[str, UserAttributes] = {}
    for event_id, event_type, occurred_at, user, external_id, device_id, platform, payload in zip(
        events["event_id"].tolist(),
        events["event_type"].tolist(),
        events["occurred_at"].dt.to_pydatetime().tolist(),
        events[USER].tolist(),
        _texts(events["external_id"]),
        _texts(events["device_id"]),
        _texts(events["app_platform_id"]),
        events["payload"].tolist(),
        strict=True,
    ):
        state = states[user]
        if state.fold(
            event_type, occurred_at, external_id, device_id, platform, orjson.loads(payload)
        ):
            found[event_id] = state.attributes_at(occurred_at)
    return found


def _texts(values: pd.Series) -> list[str | None]:
    """A nullable text column as str or None (pandas may hold a missing value as NaN)."""
    return [value if isinstance(value, str) else None for value in values.tolist()]
