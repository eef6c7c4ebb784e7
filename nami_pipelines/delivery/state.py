"""State: one pass over a chunk's rows gives the events to send, each `user.*` event with the
attributes as of itself, and each user's state at the end, for the closing profile update.

The events to send come out as `OutgoingEvents`: the row tuples as read, their parsed payloads
and their attributes in parallel lists, so nothing is built per event but the attributes a
`user.*` event carries; the mapping reads the lists by position.

Every user with an event to send gets one `RunningState`, seeded from the stored state before
the day (one lookup for the whole chunk, `state_of_users_at`), then moved forward by each of
the user's rows in time order. A payload is parsed once, only when the row is sent or is a
`user.*` event that moves the state; rows of users with nothing to send are not parsed at all.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import orjson

from nami_pipelines.delivery.later import LaterEvents
from nami_pipelines.delivery.read import EVENT_ID, USER_AT, DayChunk
from nami_pipelines.destinations.outgoing import OutgoingEvents
from nami_pipelines.event_types import USER_EVENT_PREFIX
from nami_pipelines.events.store import EventStore
from nami_pipelines.snapshots.attributes import UserAttributes
from nami_pipelines.snapshots.current import state_of_users_at
from nami_pipelines.snapshots.daily import day_end
from nami_pipelines.snapshots.repository import SnapshotRepository
from nami_pipelines.snapshots.running import RunningState, running_states

_NOT_READ: dict = {}


@dataclass(slots=True)
class Contact:
    """Where a user's closing attribute update goes: the environment of their latest sent
    event and the latest device among their sent events."""

    environment: str
    device_id: str | None


@dataclass(slots=True)
class PreparedChunk:
    """A chunk's claimed events ready to map, and what the closing update needs."""

    events: OutgoingEvents = field(default_factory=OutgoingEvents)
    # Per sent `user.*` event of a user: its position in `events` (its user and attributes).
    carried: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    # Per user with events sent: the state counting every event up to `now`.
    closing: dict[str, RunningState] = field(default_factory=dict)


def prepare_chunk(
    store: EventStore,
    repository: SnapshotRepository,
    chunk: DayChunk,
    claimed: Collection[str],
    day: date,
    now: datetime,
    later: LaterEvents,
) -> PreparedChunk:
    """The claimed events of `chunk` with their attributes, in the chunk's order (by user, then
    time), and the touched users' states as of `now` (`later`: the events after the day, up to
    `now`)."""
    users = sorted(
        {
            row[USER_AT]
            for row in chunk.selected
            if row[USER_AT] is not None and row[EVENT_ID] in claimed
        }
    )
    states = _seeded(store, repository, users, day)
    prepared = PreparedChunk()
    closing, carried, contacts = prepared.closing, prepared.carried, prepared.contacts
    events = prepared.events
    add_row, add_payload = events.rows.append, events.payloads.append
    add_attributes = events.attributes.append
    loads = orjson.loads
    # A user's rows come together: their state and contact are looked up when the user changes.
    last_user: str | None = None
    state: RunningState | None = None
    contact: Contact | None = None
    for row in chunk.rows:
        # The columns of `nami_events`, in order (`ROW_COLUMNS`), in one unpacking.
        (
            event_id,
            event_type,
            occurred_at,
            _,
            _,
            app_platform_id,
            _,
            user,
            external_id,
            device_id,
            environment,
            payload_json,
        ) = row
        if user != last_user:
            last_user, state, contact = user, states.get(user), contacts.get(user)
        sent = event_id in claimed
        if state is None and not sent:
            continue
        user_event = event_type.startswith(USER_EVENT_PREFIX)
        payload = loads(payload_json) if sent or user_event else _NOT_READ
        attributes: UserAttributes | None = None
        if state is not None:
            if occurred_at > now and user not in closing:
                closing[user] = state.copy()  # a clock ahead of ours: "now" ends here
            if external_id is not None:  # `RunningState.see`, without the call
                state.external_id = external_id
            if device_id is not None:
                state.devices[device_id] = app_platform_id
            if user_event:
                state.fold_user_event(occurred_at, app_platform_id, payload)
                if sent:
                    attributes = state.attributes_at(occurred_at)
        if not sent:
            continue
        if user is not None:
            if attributes is not None:
                carried[event_id] = len(events.rows)
            if contact is None:
                contact = contacts[user] = Contact(environment, device_id)
            else:
                contact.environment = environment
                if device_id is not None:
                    contact.device_id = device_id
        add_row(row)
        add_payload(payload)
        add_attributes(attributes)
    for user in users:
        closing.setdefault(user, states[user])
    later.fold_into(closing)
    return prepared


def _seeded(
    store: EventStore, repository: SnapshotRepository, users: list[str], day: date
) -> dict[str, RunningState]:
    """The users' states at the end of the day before: one lookup for the chunk."""
    before = state_of_users_at(store, repository, users, day_end(day - timedelta(days=1)))
    return running_states(before, users)
