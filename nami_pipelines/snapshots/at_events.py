"""The `namiml_*` attributes as of each `user.*` event (docs/attributes.md: every user event
carries them).

For a `user.*` event e, the latest user event as of e is e itself, so e's own entitlements and
journey flags decide the entitlement lists and flags; only two parts accumulate over the user's
earlier events: the devices seen (with their latest platform) and whether the user ever paid.
Both come from the state before the day plus the day's events up to e, computed per event
with columnar joins rather than by replaying users one by one.
"""

import numpy as np
import pandas as pd

from nami_pipelines.events.model import USER
from nami_pipelines.snapshots.attributes import (
    ACTIVE_ENTITLEMENTS,
    ACTIVE_SKUS,
    DEVICE_IDS,
    DEVICE_PLATFORMS,
    FORMER_SUBSCRIBER,
    IN_GRACE_PERIOD,
    IN_INTRO_OFFER_PERIOD,
    IN_TRIAL_PERIOD,
    UserAttributes,
)
from nami_pipelines.snapshots.state import (
    SnapshotState,
    UsersEvents,
    device_observations,
    latest_per_device,
    users_events,
)

_EVENT = "event_row"


def _lists_per_event(frame: pd.DataFrame, value: str, count: int) -> list[list[str]]:
    """Sorted distinct values per event row; events without any get an empty list."""
    lists: list[list[str]] = [[] for _ in range(count)]
    distinct = frame[[_EVENT, value]].drop_duplicates().sort_values([_EVENT, value])
    for row, item in zip(distinct[_EVENT].to_numpy(), distinct[value].to_numpy(), strict=True):
        lists[row].append(item)
    return lists


def attributes_at_events(
    state_before: SnapshotState, events: pd.DataFrame | UsersEvents
) -> dict[str, UserAttributes]:
    """Attributes as of each `user.*` event in `events`, keyed by `event_id`.

    `state_before` holds the users' state before the earliest of these events (e.g. the end of
    the previous day); `events` must include every event of those users since then, so that
    devices seen earlier in the day count.
    """
    split = users_events(events)
    events, user_events, parsed = split.events, split.user_events, split.parsed
    if user_events.empty:
        return {}
    count = len(user_events)
    keyed = parsed.events[[USER, "occurred_at", "loaded_seq", _EVENT]]

    entitlements = parsed.entitlements
    occurred = parsed.events["occurred_at"].array[entitlements[_EVENT].to_numpy()]
    active = entitlements[
        entitlements["expiration"].isna().to_numpy()
        | np.asarray(entitlements["expiration"].array > occurred, dtype=bool)
    ]
    active_entitlements = _lists_per_event(active, "entitlement_ref_id", count)
    active_skus = _lists_per_event(active[active["sku_ref_id"].notna()], "sku_ref_id", count)
    has_active = np.array([bool(items) for items in active_entitlements], dtype=bool)

    # Ever paid as of e: before the day, or on any of the user's events up to e (key order).
    ordered = parsed.events.sort_values([USER, "occurred_at", "loaded_seq"], kind="stable")
    paid_so_far = ordered.groupby(USER, sort=False)["once_paid"].cummax()
    paid_before = set(state_before.users.loc[state_before.users["once_paid"], USER])
    once_paid = np.zeros(count, dtype=bool)
    once_paid[ordered[_EVENT].to_numpy()] = (
        paid_so_far.to_numpy(dtype=bool) | ordered[USER].isin(paid_before).to_numpy()
    )

    # Devices as of e: every sighting of the user's devices with a key at or before e's.
    sightings = pd.concat(
        [state_before.devices, device_observations(events, parsed, user_events)],
        ignore_index=True,
    )
    pairs = keyed.merge(sightings, on=USER, how="inner")
    seen_by_then = (pairs["seen_at"] < pairs["occurred_at"]) | (
        (pairs["seen_at"] == pairs["occurred_at"]) & (pairs["seen_seq"] <= pairs["loaded_seq"])
    )
    devices = latest_per_device(pairs[seen_by_then.to_numpy()], [_EVENT])
    device_ids: list[list[str]] = [[] for _ in range(count)]
    device_platforms: list[list[str]] = [[] for _ in range(count)]
    for row, device, platform in zip(
        devices[_EVENT].to_numpy(),
        devices["device_id"].to_numpy(dtype=object),
        devices["platform_id"].to_numpy(dtype=object),
        strict=True,
    ):
        device_ids[row].append(device)
        device_platforms[row].append(platform if isinstance(platform, str) else "")

    flags = {
        flag: parsed.events[flag].to_numpy(dtype=bool)
        for flag in (
            "former_subscriber",
            "in_grace_period",
            "in_trial_period",
            "in_intro_offer_period",
        )
    }
    former = flags["former_subscriber"] | (~has_active & once_paid)
    grace = flags["in_grace_period"] & has_active
    trial = flags["in_trial_period"] & has_active
    intro = flags["in_intro_offer_period"] & has_active
    return {
        event_id: {
            ACTIVE_ENTITLEMENTS: active_entitlements[row],
            ACTIVE_SKUS: active_skus[row],
            DEVICE_IDS: device_ids[row],
            DEVICE_PLATFORMS: device_platforms[row],
            FORMER_SUBSCRIBER: bool(former[row]),
            IN_GRACE_PERIOD: bool(grace[row]),
            IN_TRIAL_PERIOD: bool(trial[row]),
            IN_INTRO_OFFER_PERIOD: bool(intro[row]),
        }
        for row, event_id in enumerate(user_events["event_id"].to_numpy(dtype=object))
    }
