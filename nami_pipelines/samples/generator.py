"""Realistic, deterministic sample Nami events (docs/input.md) for demos, tests and load runs.

Each user is generated on its own from a random stream seeded by the run seed and the user's
index, and written before the next one starts: memory stays flat whatever the number of users, the
same arguments always give the same bytes, and user N looks the same whether 10 or 100,000 users
are generated. A user's events come out in time order; users follow each other in index order.
Event ids come from the events' content (`ids.py`), so one id never has two contents, whatever
the sizes generated with one seed.
"""

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nami_pipelines.samples.users import UserRun


def _window(start: date, days: int) -> tuple[datetime, datetime]:
    """[start, start + days) in UTC: every event falls inside it."""
    begin = datetime.combine(start, time(), tzinfo=UTC)
    return begin, begin + timedelta(days=days)


def _check_arguments(users: int, days: int) -> None:
    """Refuse nonsense up front, with a message the command line can print as is."""
    if users < 0:
        raise ValueError(f"users must be 0 or more, got {users}")
    if days < 1:
        raise ValueError(f"days must be 1 or more, got {days}")


def _user_records(seed: int, index: int, window: tuple[datetime, datetime]) -> list[dict[str, Any]]:
    """One user's records from their own stream, so users are independent of each other."""
    return UserRun(random.Random(f"{seed}:{index}"), window).records()


def generate_events(users: int, days: int, start: date, seed: int) -> Iterator[dict[str, Any]]:
    """Sample events of `users` users over `days` days from `start` (UTC), user after user.

    Bad arguments fail here, not at the first `next()`. Records are fresh dicts per call.
    """
    _check_arguments(users, days)
    window = _window(start, days)
    return (record for index in range(users) for record in _user_records(seed, index, window))


def write_events_ndjson(
    path: Path,
    users: int,
    days: int,
    start: date,
    seed: int,
    show_progress: bool = False,
) -> int:
    """Write `generate_events(...)` as NDJSON to `path`; returns how many events were written."""
    _check_arguments(users, days)
    window = _window(start, days)
    encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        for index in tqdm(range(users), unit="user", disable=not show_progress):
            records = _user_records(seed, index, window)
            if records:
                out.write("\n".join(map(encode, records)) + "\n")
            count += len(records)
    return count
