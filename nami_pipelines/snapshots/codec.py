"""Converts between the columnar `SnapshotState` and the per-user rows stored for each day."""

import json
from typing import Any

import numpy as np
import pandas as pd

from nami_pipelines.events.model import USER
from nami_pipelines.snapshots.attributes import FLAG_ATTRIBUTES, LIST_ATTRIBUTES
from nami_pipelines.snapshots.state import (
    JOURNEY_FLAGS,
    SnapshotState,
    empty_state,
)

_ISO = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def _iso_or_none(values: pd.Series) -> np.ndarray:
    text = values.dt.strftime(_ISO).to_numpy(dtype=object)
    return np.where(values.isna().to_numpy(), None, text)


def _grouped(frame: pd.DataFrame, columns: list[str]) -> dict[Any, list[list[Any]]]:
    """Per user, the rows of `frame` as lists of the given columns (frame sorted by user)."""
    if frame.empty:
        return {}
    owners = frame[USER].to_numpy(dtype=object)
    boundaries = np.flatnonzero(owners[1:] != owners[:-1]) + 1
    starts = np.concatenate(([0], boundaries))
    records = frame[columns].to_numpy(dtype=object).tolist()
    ends = np.concatenate((boundaries, [len(records)]))
    return {owners[start]: records[start:end] for start, end in zip(starts, ends, strict=True)}


def encode_state(state: SnapshotState) -> pd.Series:
    """The carry-over state of each user as JSON text, indexed by `nami_user_id`."""
    ents = state.entitlements.sort_values([USER, "entitlement_ref_id"], kind="stable")
    ents = ents.assign(expiration=_iso_or_none(ents["expiration"]))
    devices = state.devices.sort_values([USER, "device_id"], kind="stable")
    devices = devices.assign(seen_at=_iso_or_none(devices["seen_at"]))
    ents_by_user = _grouped(ents, ["entitlement_ref_id", "sku_ref_id", "expiration"])
    devices_by_user = _grouped(devices, ["device_id", "platform_id", "seen_at", "seen_seq", "rank"])
    users = state.users
    columns = {
        "user": users[USER].to_numpy(dtype=object),
        "ext_at": _iso_or_none(users["external_id_at"]),
        "ext_seq": users["external_id_seq"].to_numpy(dtype="int64").tolist(),
        "last_at": _iso_or_none(users["last_at"]),
        "last_seq": users["last_seq"].to_numpy(dtype="int64").tolist(),
        "flags": users[list(JOURNEY_FLAGS)].to_numpy(dtype=bool).tolist(),
        "once_paid": users["once_paid"].to_numpy(dtype=bool).tolist(),
    }
    encoded = [
        json.dumps(
            {
                "ext_at": ext_at,
                "ext_seq": ext_seq,
                "last_at": last_at,
                "last_seq": last_seq,
                "flags": flags,
                "once_paid": once_paid,
                "ents": ents_by_user.get(user, []),
                "devices": devices_by_user.get(user, []),
            },
            separators=(",", ":"),
        )
        for user, ext_at, ext_seq, last_at, last_seq, flags, once_paid in zip(
            *columns.values(), strict=True
        )
    ]
    return pd.Series(encoded, index=pd.Index(columns["user"], name=USER), dtype=object)


def _utc(values: list[Any]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601").astype(
        "datetime64[us, UTC]"
    )


def decode_state(rows: pd.DataFrame) -> SnapshotState:
    """Rebuild the state of the users in `rows` (columns `nami_user_id`, `external_id`,
    `carry_state`) as stored by `encode_state`."""
    if rows.empty:
        return empty_state()
    decoded = [json.loads(text) for text in rows["carry_state"]]
    user_ids = rows[USER].to_numpy(dtype=object)
    flags = np.array([item["flags"] for item in decoded], dtype=bool).reshape(
        -1, len(JOURNEY_FLAGS)
    )
    external_ids = rows["external_id"].to_numpy(dtype=object)
    users = pd.DataFrame(
        {
            USER: user_ids,
            "external_id": np.where(pd.isna(external_ids), None, external_ids),
            "external_id_at": _utc([item["ext_at"] for item in decoded]),
            "external_id_seq": np.array([item["ext_seq"] for item in decoded], dtype="int64"),
            "last_at": _utc([item["last_at"] for item in decoded]),
            "last_seq": np.array([item["last_seq"] for item in decoded], dtype="int64"),
            **{flag: flags[:, position] for position, flag in enumerate(JOURNEY_FLAGS)},
            "once_paid": np.array([item["once_paid"] for item in decoded], dtype=bool),
        }
    )
    ent_rows = [
        (user, *entitlement)
        for user, item in zip(user_ids, decoded, strict=True)
        for entitlement in item["ents"]
    ]
    entitlements = pd.DataFrame(
        ent_rows, columns=[USER, "entitlement_ref_id", "sku_ref_id", "expiration"], dtype=object
    )
    entitlements["expiration"] = _utc(entitlements["expiration"].tolist())
    device_rows = [
        (user, *device)
        for user, item in zip(user_ids, decoded, strict=True)
        for device in item["devices"]
    ]
    devices = pd.DataFrame(
        device_rows,
        columns=[USER, "device_id", "platform_id", "seen_at", "seen_seq", "rank"],
        dtype=object,
    )
    devices["seen_at"] = _utc(devices["seen_at"].tolist())
    devices["seen_seq"] = devices["seen_seq"].astype("int64")
    devices["rank"] = devices["rank"].astype("int64")
    return SnapshotState(users, entitlements, devices)


def snapshot_rows(snapshot: pd.DataFrame) -> pd.DataFrame:
    """Attribute values as stored: lists as JSON text, flags as booleans."""
    stored = snapshot.copy()
    for name in LIST_ATTRIBUTES:
        stored[name] = [json.dumps(values, separators=(",", ":")) for values in snapshot[name]]
    for name in FLAG_ATTRIBUTES:
        stored[name] = snapshot[name].astype(bool)
    return stored


def snapshot_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The inverse of `snapshot_rows`: stored rows back to lists and booleans."""
    snapshot = rows.copy()
    for name in LIST_ATTRIBUTES:
        snapshot[name] = [json.loads(text) for text in rows[name]]
    for name in FLAG_ATTRIBUTES:
        snapshot[name] = rows[name].astype(bool)
    external_ids = rows["external_id"].to_numpy(dtype=object)
    snapshot["external_id"] = pd.Series(
        np.where(pd.isna(external_ids), None, external_ids), index=rows.index, dtype=object
    )
    return snapshot
