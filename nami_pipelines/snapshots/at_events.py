"""The `namiml_*` attributes as of each `user.*` event (docs/attributes.md: every user event
carries them), for events held in a DataFrame.

Each user's events are folded in key order into a `RunningState` seeded from the state before
them; a `user.*` event's attributes are that state's just after it, at its own instant.
Delivery folds the rows it reads the same way (`nami_pipelines.delivery.state`).
"""

import pandas as pd

from nami_pipelines.snapshots.attributes import UserAttributes
from nami_pipelines.snapshots.running import fold_events, running_states
from nami_pipelines.snapshots.state import USER, SnapshotState


def attributes_at_events(
    state_before: SnapshotState, events: pd.DataFrame
) -> dict[str, UserAttributes]:
    """Attributes as of each `user.*` event in `events`, keyed by `event_id`.

    `state_before` holds the users' state before the earliest of these events (e.g. the end of
    the previous day); `events` must include every event of those users since then, so that
    devices seen earlier in the day count.
    """
    users = events[USER].dropna().unique().tolist()
    return fold_events(running_states(state_before, users), events)
