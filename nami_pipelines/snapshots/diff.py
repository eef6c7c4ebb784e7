"""Attribute updates: which users' `namiml_*` values changed between two snapshots
(docs/attributes.md)."""

from dataclasses import dataclass

import pandas as pd

from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES, UserAttributes

USER = "nami_user_id"


@dataclass(frozen=True, slots=True)
class AttributeUpdate:
    """One user's change: `old` is None for a user who just appeared; `changed` names the
    attributes whose value differs (all eight for a new user)."""

    nami_user_id: str
    external_id: str | None
    old: UserAttributes | None
    new: UserAttributes
    changed: tuple[str, ...]


def _comparable(snapshot: pd.DataFrame) -> pd.DataFrame:
    """Lists as tuples so that whole columns compare element-wise in one vectorized step."""
    frame = snapshot.set_index(USER)
    for name in ATTRIBUTE_NAMES:
        frame[name] = frame[name].map(
            lambda value: tuple(value) if isinstance(value, list) else value
        )
    return frame


def diff_snapshots(old: pd.DataFrame, new: pd.DataFrame) -> list[AttributeUpdate]:
    """Users of `new` who are absent from `old` or whose attributes differ, sorted by user.

    Users only in `old` are not reported: attributes are never deleted by this pipeline.
    """
    before = _comparable(old)
    after = _comparable(new)
    aligned = before.reindex(after.index)
    appeared = ~after.index.isin(before.index)
    differs = pd.DataFrame(
        {name: aligned[name].ne(after[name]).to_numpy() for name in ATTRIBUTE_NAMES},
        index=after.index,
    )
    differs[appeared] = True
    changed_rows = differs.any(axis=1)
    updates: list[AttributeUpdate] = []
    for user in after.index[changed_rows.to_numpy()]:
        row = after.loc[user]
        changed = tuple(name for name in ATTRIBUTE_NAMES if differs.at[user, name])
        previous = None if user not in before.index else _values(before.loc[user])
        updates.append(
            AttributeUpdate(
                nami_user_id=user,
                external_id=row["external_id"],
                old=previous,
                new=_values(row),
                changed=changed,
            )
        )
    return updates


def _values(row: pd.Series) -> UserAttributes:
    return {
        name: list(row[name]) if isinstance(row[name], tuple) else bool(row[name])
        for name in ATTRIBUTE_NAMES
    }
