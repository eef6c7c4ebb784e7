"""What carries a user's attributes from one instant to the next, and how events move it forward.

The snapshot at T (docs/attributes.md) depends on history only through a small per-user state: the
latest `user.*` event E (its ordering key, raw journey flags and listed entitlements with
expirations), every device seen with its latest platform, whether the user ever paid, and the latest
external id. `advance_state` folds any set of events into that state (in any order, in any chunking:
each part keeps a maximum or an "any"), and `materialize_snapshot` turns a state into attribute
values at an instant. The from-scratch snapshot and the incremental daily snapshot are the same two
steps, so they cannot drift apart. Everything is columnar: no per-user Python logic.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from nami_pipelines.event_types import USER_EVENT_PREFIX
from nami_pipelines.events.model import USER
from nami_pipelines.snapshots.attributes import (
    ACTIVE_ENTITLEMENTS,
    ACTIVE_SKUS,
    DEVICE_IDS,
    DEVICE_PLATFORMS,
    SNAPSHOT_COLUMNS,
    attribute_flags,
    pays_now,
)

# The journey flags the attributes depend on, in the order `attribute_flags` takes them.
JOURNEY_FLAGS: tuple[str, ...] = (
    "former_subscriber",
    "in_grace_period",
    "in_trial_period",
    "in_intro_offer_period",
)
ENTITLEMENT_COLUMNS: tuple[str, ...] = (USER, "entitlement_ref_id", "sku_ref_id", "expiration")

# Within one event, a `devices[]` entry (which names its own platform) outranks the row's
# `device_id` column when both mention the same device.
_RANK_DEVICE_COLUMN = 0
_RANK_DEVICES_LIST = 1


@dataclass(frozen=True)
class SnapshotState:
    """Per-user carry-over state, as three tables keyed by `nami_user_id`.

    `users` has one row per user seen (E's key is NaT/-1 when the user has no `user.*` event
    yet); `entitlements` holds E's listed entitlements; `devices` one row per (user, device).
    """

    users: pd.DataFrame
    entitlements: pd.DataFrame
    devices: pd.DataFrame

    @property
    def user_count(self) -> int:
        return len(self.users)


def _as_utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")


def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")


def empty_state() -> SnapshotState:
    """The state before any event: no users."""
    users = pd.DataFrame(
        {
            USER: pd.Series([], dtype=object),
            "external_id": pd.Series([], dtype=object),
            "external_id_at": pd.Series([], dtype="datetime64[us, UTC]"),
            "external_id_seq": pd.Series([], dtype="int64"),
            "last_at": pd.Series([], dtype="datetime64[us, UTC]"),
            "last_seq": pd.Series([], dtype="int64"),
            **{flag: pd.Series([], dtype=bool) for flag in JOURNEY_FLAGS},
            "once_paid": pd.Series([], dtype=bool),
        }
    )
    entitlements = pd.DataFrame(
        {
            USER: pd.Series([], dtype=object),
            "entitlement_ref_id": pd.Series([], dtype=object),
            "sku_ref_id": pd.Series([], dtype=object),
            "expiration": pd.Series([], dtype="datetime64[us, UTC]"),
        }
    )
    devices = pd.DataFrame(
        {
            USER: pd.Series([], dtype=object),
            "device_id": pd.Series([], dtype=object),
            "platform_id": pd.Series([], dtype=object),
            "seen_at": pd.Series([], dtype="datetime64[us, UTC]"),
            "seen_seq": pd.Series([], dtype="int64"),
            "rank": pd.Series([], dtype="int64"),
        }
    )
    return SnapshotState(users, entitlements, devices)


def _text_or_none(values: pd.Series) -> np.ndarray:
    """Object values with None for missing: one representation of "no value" everywhere."""
    as_object = values.to_numpy(dtype=object)
    return np.where(pd.isna(as_object), None, as_object)


@dataclass(frozen=True)
class ParsedUserEvents:
    """The state-bearing content of a batch of `user.*` events, one row per event."""

    events: pd.DataFrame  # USER, occurred_at, loaded_seq, event_row, flags, once_paid
    entitlements: pd.DataFrame  # event_row, entitlement_ref_id, sku_ref_id, expiration
    devices: pd.DataFrame  # event_row, device_id, platform_id


def parse_user_events(user_events: pd.DataFrame) -> ParsedUserEvents:
    payloads = [orjson.loads(text) for text in user_events["payload"].tolist()]
    journeys = [payload.get("customer_journey_state") or {} for payload in payloads]
    event_rows = np.arange(len(payloads))
    events = pd.DataFrame(
        {
            USER: user_events[USER].to_numpy(dtype=object),
            "occurred_at": user_events["occurred_at"].array,
            "loaded_seq": user_events["loaded_seq"].to_numpy(dtype="int64"),
            "event_row": event_rows,
            **{
                flag: np.fromiter((bool(j.get(flag, False)) for j in journeys), bool, len(journeys))
                for flag in JOURNEY_FLAGS
            },
        }
    )
    entitlement_rows = [
        (row, item["entitlement_ref_id"], item.get("sku_ref_id"), item.get("expiration"))
        for row, payload in enumerate(payloads)
        for item in payload.get("active_entitlements") or ()
    ]
    entitlements = pd.DataFrame(
        entitlement_rows,
        columns=["event_row", "entitlement_ref_id", "sku_ref_id", "expiration"],
        dtype=object,
    )
    entitlements["event_row"] = entitlements["event_row"].astype("int64")
    entitlements["expiration"] = _utc(entitlements["expiration"])
    fallback_platforms = user_events["app_platform_id"].to_numpy(dtype=object)
    device_rows = [
        (row, device["id"], (device.get("platform") or {}).get("id") or fallback_platforms[row])
        for row, payload in enumerate(payloads)
        for device in payload.get("devices") or ()
    ]
    devices = pd.DataFrame(device_rows, columns=["event_row", "device_id", "platform_id"])
    devices["event_row"] = devices["event_row"].astype("int64")
    # "Once paid": the event showed an entitlement active at that moment outside a free trial.
    occurred = events["occurred_at"].array[entitlements["event_row"].to_numpy()]
    active_then = entitlements["expiration"].isna().to_numpy() | (
        np.asarray(entitlements["expiration"].array > occurred, dtype=bool)
    )
    rows_with_active = np.zeros(len(events), dtype=bool)
    rows_with_active[entitlements["event_row"].to_numpy()[active_then]] = True
    events["once_paid"] = pays_now(rows_with_active, events["in_trial_period"].to_numpy())
    return ParsedUserEvents(events, entitlements, devices)


def _latest_external_ids(state: SnapshotState, events: pd.DataFrame) -> pd.DataFrame:
    known = events[events["external_id"].notna()]
    candidates = pd.concat(
        [
            state.users.loc[
                state.users["external_id"].notna(),
                [USER, "external_id", "external_id_at", "external_id_seq"],
            ],
            pd.DataFrame(
                {
                    USER: known[USER].to_numpy(dtype=object),
                    "external_id": known["external_id"].to_numpy(dtype=object),
                    "external_id_at": known["occurred_at"].array,
                    "external_id_seq": known["loaded_seq"].to_numpy(dtype="int64"),
                }
            ),
        ],
        ignore_index=True,
    )
    ordered = candidates.sort_values([USER, "external_id_at", "external_id_seq"], kind="stable")
    return ordered.drop_duplicates(USER, keep="last").set_index(USER)


def _latest_user_events(
    state: SnapshotState, parsed: ParsedUserEvents
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """E per user: the greater of the state's E and this batch's latest `user.*` event."""
    with_e = state.users[state.users["last_seq"] >= 0]
    previous = pd.DataFrame(
        {
            USER: with_e[USER].to_numpy(dtype=object),
            "last_at": with_e["last_at"].array,
            "last_seq": with_e["last_seq"].to_numpy(dtype="int64"),
            **{flag: with_e[flag].to_numpy(dtype=bool) for flag in JOURNEY_FLAGS},
            "event_row": -1,
        }
    )
    incoming = parsed.events.rename(columns={"occurred_at": "last_at", "loaded_seq": "last_seq"})
    candidates = pd.concat(
        [previous, incoming[[USER, "last_at", "last_seq", *JOURNEY_FLAGS, "event_row"]]],
        ignore_index=True,
    )
    winners = (
        candidates.sort_values([USER, "last_at", "last_seq"], kind="stable")
        .drop_duplicates(USER, keep="last")
        .set_index(USER)
    )
    kept_users = winners.index[winners["event_row"] < 0]
    kept = state.entitlements[state.entitlements[USER].isin(kept_users)]
    new_rows = winners.loc[winners["event_row"] >= 0, "event_row"]
    fresh = parsed.entitlements[parsed.entitlements["event_row"].isin(new_rows.to_numpy())]
    fresh = fresh.assign(
        **{USER: parsed.events[USER].to_numpy(dtype=object)[fresh["event_row"].to_numpy()]}
    )
    entitlements = pd.concat(
        [kept[list(ENTITLEMENT_COLUMNS)], fresh[list(ENTITLEMENT_COLUMNS)]], ignore_index=True
    )
    return winners.drop(columns="event_row"), entitlements


def device_observations(
    events: pd.DataFrame, parsed: ParsedUserEvents, user_events: pd.DataFrame
) -> pd.DataFrame:
    """Every sighting of a user's device in these events, with its platform and ordering key."""
    with_device = events[events["device_id"].notna()]
    from_column = pd.DataFrame(
        {
            USER: with_device[USER].to_numpy(dtype=object),
            "device_id": with_device["device_id"].to_numpy(dtype=object),
            "platform_id": with_device["app_platform_id"].to_numpy(dtype=object),
            "seen_at": with_device["occurred_at"].array,
            "seen_seq": with_device["loaded_seq"].to_numpy(dtype="int64"),
            "rank": _RANK_DEVICE_COLUMN,
        }
    )
    rows = parsed.devices["event_row"].to_numpy()
    from_payload = pd.DataFrame(
        {
            USER: user_events[USER].to_numpy(dtype=object)[rows],
            "device_id": parsed.devices["device_id"].to_numpy(dtype=object),
            "platform_id": parsed.devices["platform_id"].to_numpy(dtype=object),
            "seen_at": user_events["occurred_at"].array[rows],
            "seen_seq": user_events["loaded_seq"].to_numpy(dtype="int64")[rows],
            "rank": _RANK_DEVICES_LIST,
        }
    )
    return pd.concat([from_column, from_payload], ignore_index=True)


def latest_per_device(candidates: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The latest sighting per `keys` + device: its platform is the one that counts."""
    ordered = candidates.sort_values(
        [*keys, "device_id", "seen_at", "seen_seq", "rank"], kind="stable"
    )
    return ordered.drop_duplicates([*keys, "device_id"], keep="last").reset_index(drop=True)


def user_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The events that belong to a user, with `occurred_at` in one datetime resolution."""
    events = events[events[USER].notna()]
    return events.assign(
        occurred_at=pd.to_datetime(events["occurred_at"], utc=True).astype("datetime64[us, UTC]")
    )


def advance_state(state: SnapshotState, events: pd.DataFrame) -> SnapshotState:
    """Fold events (columns of `nami_events`, `occurred_at` UTC-aware) into the state.

    The caller chooses which events count (e.g. those with `occurred_at` in a day); rows without
    a `nami_user_id` do not belong to any user's snapshot and are ignored.
    """
    events = user_rows(events)
    user_events = events[events["event_type"].str.startswith(USER_EVENT_PREFIX)]
    parsed = parse_user_events(user_events)
    if events.empty:
        return state
    winners, entitlements = _latest_user_events(state, parsed)
    external_ids = _latest_external_ids(state, events)
    observed = device_observations(events, parsed, user_events)
    devices = latest_per_device(pd.concat([state.devices, observed], ignore_index=True), [USER])
    previously_paid = state.users.loc[state.users["once_paid"], USER]
    paid_now = parsed.events.loc[parsed.events["once_paid"], USER]
    paid = pd.Index(pd.concat([previously_paid, paid_now]).unique())

    all_users = pd.Index(pd.concat([state.users[USER], events[USER]]).unique(), name=USER)
    users = pd.DataFrame(index=all_users)
    users["external_id"] = _text_or_none(external_ids["external_id"].reindex(all_users))
    users["external_id_at"] = _as_utc(external_ids["external_id_at"].reindex(all_users))
    users["external_id_seq"] = (
        external_ids["external_id_seq"].reindex(all_users).fillna(-1).astype("int64")
    )
    users["last_at"] = _as_utc(winners["last_at"].reindex(all_users))
    users["last_seq"] = winners["last_seq"].reindex(all_users).fillna(-1).astype("int64")
    for flag in JOURNEY_FLAGS:
        users[flag] = winners[flag].reindex(all_users).fillna(False).astype(bool)
    users["once_paid"] = all_users.isin(paid)
    return SnapshotState(users.reset_index(), entitlements, devices)


def _sorted_lists(frame: pd.DataFrame, value: str, users: pd.Index) -> pd.Series:
    """Per user, the distinct values sorted ascending (users without any get an empty list)."""
    distinct = frame[[USER, value]].drop_duplicates().sort_values([USER, value], kind="stable")
    return _group_lists(distinct[USER].to_numpy(dtype=object), distinct[value], users)


def _group_lists(owners: np.ndarray, values: pd.Series, users: pd.Index) -> pd.Series:
    """Split a column already ordered by owner into one Python list per owner."""
    by_owner: dict[Any, list[Any]] = {}
    if len(owners):
        boundaries = np.flatnonzero(owners[1:] != owners[:-1]) + 1
        starts = np.concatenate(([0], boundaries))
        chunks = np.split(values.to_numpy(dtype=object), boundaries)
        by_owner = dict(zip(owners[starts], (chunk.tolist() for chunk in chunks), strict=True))
    return pd.Series([by_owner.get(user, []) for user in users], index=users, dtype=object)


def materialize_snapshot(state: SnapshotState, at: pd.Timestamp) -> pd.DataFrame:
    """The attribute values (docs/attributes.md) of every user in the state at instant `at`.

    One row per user, sorted by `nami_user_id`, columns `SNAPSHOT_COLUMNS`: lists as Python lists
    of strings, flags as booleans, `external_id` a string or None.
    """
    users = state.users.sort_values(USER, kind="stable")
    index = pd.Index(users[USER].to_numpy(dtype=object), name=USER)
    ents = state.entitlements
    active = ents[ents["expiration"].isna() | (ents["expiration"] > at)]
    has_active = index.isin(active[USER].unique())
    snapshot = pd.DataFrame(index=index)
    external_ids = users["external_id"].to_numpy(dtype=object)
    snapshot["external_id"] = pd.Series(
        np.where(pd.isna(external_ids), None, external_ids), index=index, dtype=object
    )
    snapshot[ACTIVE_ENTITLEMENTS] = _sorted_lists(active, "entitlement_ref_id", index)
    snapshot[ACTIVE_SKUS] = _sorted_lists(active[active["sku_ref_id"].notna()], "sku_ref_id", index)
    devices = state.devices.sort_values([USER, "device_id"], kind="stable")
    owners = devices[USER].to_numpy(dtype=object)
    snapshot[DEVICE_IDS] = _group_lists(owners, devices["device_id"], index)
    platforms = devices["platform_id"].astype(object).where(devices["platform_id"].notna(), "")
    snapshot[DEVICE_PLATFORMS] = _group_lists(owners, platforms, index)
    journey = tuple(users[flag].to_numpy(dtype=bool) for flag in JOURNEY_FLAGS)
    once_paid = users["once_paid"].to_numpy(dtype=bool)
    for name, values in attribute_flags(journey, has_active, once_paid).items():  # type: ignore[arg-type]
        snapshot[name] = values
    return snapshot.reset_index()[list(SNAPSHOT_COLUMNS)]


def next_expiration(state: SnapshotState, at: pd.Timestamp) -> pd.Series:
    """Per user, the earliest listed expiration after `at` (NaT if none): until then, with no
    new event, the user's attributes cannot change."""
    ents = state.entitlements
    upcoming = ents[ents["expiration"] > at]
    earliest = upcoming.groupby(USER)["expiration"].min()
    return earliest.reindex(pd.Index(state.users[USER], name=USER))
