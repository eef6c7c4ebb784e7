"""Generated event ids: for one seed, an id has one content whatever the sizes generated.

Files of several sizes generated with the same seed are loaded into one store, as a user does who
runs the demo at its default size and then at the README's larger one: nothing may conflict.
"""

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from nami_pipelines.events.loader import load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import generate_events, write_events_ndjson
from nami_pipelines.samples.ids import EVENT_ID_NAMESPACE, EventIds, uuid5_string

SEED = 7
# The demo's default size (500 users, the 7 days before today), then the README's larger demo
# (2,000 users, the 14 days before today), on a fixed "today" in the past.
TODAY = date(2026, 11, 30)
DEMO_DEFAULT = (500, 7, TODAY - timedelta(days=7))
DEMO_LARGER = (2000, 14, TODAY - timedelta(days=14))
# Users, days and start varied one at a time around a small run.
SIZES = [
    (150, 7, date(2026, 3, 1)),
    (300, 7, date(2026, 3, 1)),
    (150, 14, date(2026, 3, 1)),
    (150, 14, date(2026, 2, 22)),
    (150, 30, date(2026, 2, 8)),
]


def test_one_seed_never_gives_an_id_two_contents_across_users_days_and_start() -> None:
    contents: dict[str, str] = {}
    shared = 0
    for users, days, start in SIZES:
        for record in generate_events(users, days, start, SEED):
            content = json.dumps(record, sort_keys=True)
            known = contents.setdefault(record["event_id"], content)
            assert known == content, record["event_id"]
            shared += known is not content
    # More users repeat the first users exactly, so some ids must recur with the same content.
    assert shared > 0


def test_loading_the_default_demo_then_the_larger_one_quarantines_nothing(
    event_store: EventStore, tmp_path: Path
) -> None:
    loaded = 0
    for users, days, start in (DEMO_DEFAULT, DEMO_LARGER):
        path = tmp_path / f"events-{users}u-{days}d.ndjson"
        count = write_events_ndjson(path, users=users, days=days, start=start, seed=SEED)
        summary = load_ndjson_file(path, event_store)
        assert (summary.quarantined, summary.loaded + summary.duplicates) == (0, count)
        loaded += summary.loaded
    assert event_store.count_quarantined() == 0
    assert event_store.count_events() == loaded


def test_identical_events_of_one_user_still_get_one_id_each() -> None:
    ids = EventIds()
    impression: dict[str, Any] = {"event_type": "device.impression", "payload": {"name": "x"}}
    first, second = ids.id_for(impression), ids.id_for(dict(impression))
    assert first != second
    # A new user's run starts again from the first rank: the same content, the same ids.
    again = EventIds()
    assert (again.id_for(impression), again.id_for(impression)) == (first, second)


@pytest.mark.parametrize("name", [b"", b'{"event_type":"device.impression"}', "é#1".encode()])
def test_event_ids_are_the_standard_version_5_uuids_of_the_content(name: bytes) -> None:
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, name.decode())
    assert uuid5_string(name) == str(expected)
    assert expected.version == 5
