"""Generated event databases for the benchmarks, built once and reused while nothing changes.

Generating and loading a million events takes minutes, far longer than some cases run, so a
built SQLite database is kept in the work folder under a key made of its parameters and a hash of
the sources it depends on (events and snapshots: a change to the generator, loader, tables or
snapshots invalidates it). Its events lie on the days just before the day it was built (delivery
datasets must not turn historical, and no event may lie in the future); that stays true for a
week, so a build is reused for `REUSE_DAYS` days rather than redone every morning. Cases that
write (the ledger, snapshot rows) work on a copy, so every case starts from the same state.
`prepare` builds the missing ones side by side, before any case is timed.
"""

import hashlib
import json
import math
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import nami_pipelines
from nami_pipelines.events.loader import LOAD_CHUNK_LINES
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.tables import nami_events
from nami_pipelines.events.validation import validate_event
from nami_pipelines.samples import PRODUCTION_APP_ID, generate_events
from nami_pipelines.snapshots.daily import day_end, materialize_day
from nami_pipelines.snapshots.repository import SnapshotRepository

# Measured on the generator: a one-day window gives about 1.83 production-app events per user
# (8% of users belong to the staging app), a 30-day window about 14.9 events per user.
PRODUCTION_EVENTS_PER_USER_DAY = 1.75
EVENTS_PER_USER_30_DAYS = 14.9
COHORT_DAYS = 7
_READY = "ready.json"
_IDENTITY = "identity.json"
REUSE_DAYS = 7
# The seeds of the day datasets: one per use, so the large day and the rate days are not the
# throughput day cut differently.
THROUGHPUT_SEED = 7
LARGE_DAY_SEED = 31
RATE_SEED = 41


# What a built database depends on: the generator, the loader and tables, and the snapshots
# where it stores some (the day). Delivery code is left out, so editing a sender does not throw
# away a million loaded events, and the snapshot datasets hold events only, so editing the
# snapshot code they measure does not either.
_DATA_SOURCES = ("events", "snapshots", "event_types.py")
_EVENT_SOURCES = ("events", "event_types.py")
_SOURCES_BY_KIND = {"day": _DATA_SOURCES, "history": _EVENT_SOURCES, "cohorts": _EVENT_SOURCES}


def source_fingerprint(names: tuple[str, ...] = _DATA_SOURCES) -> str:
    """A hash of the package sources a built database depends on (or of `names` under the
    package: `("",)` is the whole package)."""
    digest = hashlib.sha256()
    root = Path(nami_pipelines.__file__).parent
    for name in names:
        target = root / name
        paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in paths:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def yesterday() -> date:
    """The newest whole UTC day: recent enough for the live endpoints (not historical)."""
    return datetime.now(UTC).date() - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A built database and what it holds."""

    path: Path
    info: dict[str, Any]

    @property
    def url(self) -> str:
        return sqlite_url(self.path)

    def copy_to(self, target: Path) -> "Dataset":
        """A private copy for a case that writes (ledger rows, snapshot rows)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.path, target)
        return Dataset(target, self.info)

    def remove(self) -> None:
        """Delete a private copy with its WAL files."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _checkpoint(path: Path) -> None:
    """Folds the WAL into the main file, so a plain file copy is the whole database."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


_BUILD_LOCKS: dict[Path, threading.Lock] = {}
_BUILD_LOCKS_GUARD = threading.Lock()


def _build_lock(folder: Path) -> threading.Lock:
    """One lock per dataset, so `prepare` and a section asking for the same one build it once."""
    with _BUILD_LOCKS_GUARD:
        return _BUILD_LOCKS.setdefault(folder, threading.Lock())


def _cached(work: Path, kind: str, parameters: dict[str, Any], *, dated: str) -> Dataset:
    """The dataset for these parameters: from the cache when it is complete and less than
    `REUSE_DAYS` old, else built in a child process (`build_dataset`), so this process never
    holds a million events: building the large day peaks at several GB, and children forked
    later would start from that. `dated` names the parameter holding the (first) day, which is
    left out of the key: it only follows the day the build ran."""
    from benchmarks.measure import run_child

    parameters = json.loads(json.dumps(parameters, default=str))
    identity = {
        "kind": kind,
        **{name: value for name, value in parameters.items() if name != dated},
    }
    code = source_fingerprint(_SOURCES_BY_KIND[kind])
    key = hashlib.sha256(json.dumps({**identity, "code": code}).encode()).hexdigest()[:16]
    folder = work / f"{kind}-{key}"
    ready = folder / _READY
    database = folder / "events.sqlite"
    with _build_lock(folder):
        if ready.exists() and database.exists():
            info = json.loads(ready.read_text())
            built_on = date.fromisoformat(info.get("built_on", "1970-01-01"))
            if built_on >= datetime.now(UTC).date() - timedelta(days=REUSE_DAYS):
                return Dataset(database, info)
        _forget_older_builds(work, identity)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / _IDENTITY).write_text(json.dumps(identity))
        arguments = {"kind": kind, "parameters": parameters, "folder": str(folder)}
        info = run_child("dataset", arguments, timeout=4 * 3600)
        info["built_on"] = datetime.now(UTC).date().isoformat()
        ready.write_text(json.dumps(info))
        return Dataset(database, info)


def prepare(builds: list[Callable[[], Dataset]], processes: int) -> None:
    """Builds the datasets a run needs, `processes` at a time (each build is a child process),
    so the first run on a machine spends minutes, not the sum of them, before timing anything."""
    with ThreadPoolExecutor(max_workers=max(1, processes)) as pool:
        for future in [pool.submit(build) for build in builds]:
            error = future.exception()
            if error is not None:
                # The section that reads it asks again, and reports the failure in its row.
                print(f"[benchmarks] a dataset failed to build: {error}", file=sys.stderr)


def _forget_older_builds(work: Path, identity: dict[str, Any]) -> None:
    """Removes builds of the same dataset made with older code: they would only fill the disk."""
    for other in work.glob(f"{identity['kind']}-*"):
        marker = other / _IDENTITY
        if marker.exists() and json.loads(marker.read_text()) == identity:
            shutil.rmtree(other, ignore_errors=True)


def build_dataset(kind: str, parameters: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Builds one dataset into `folder` (in the child process); returns its info."""
    from benchmarks.measure import peak_rss_mb

    started = time.perf_counter()
    built = BUILDERS[kind](folder, **parameters)
    _checkpoint(folder / "events.sqlite")
    return {
        "kind": kind,
        **parameters,
        **built,
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_peak_rss_mb": round(peak_rss_mb()),
    }


def _load_generated(store: EventStore, *, users: int, days: int, start: date, seed: int) -> int:
    """Generated events, validated and stored as the loader stores a file's lines, without the
    file: writing a million lines and parsing them back was a third of a large build."""
    now = datetime.now(UTC)
    records = generate_events(users, days, start, seed)
    loaded = 0
    while chunk := [
        validate_event(record, now=now) for record in islice(records, LOAD_CHUNK_LINES)
    ]:
        outcome = store.insert_events(chunk, source="generated", line_numbers=range(len(chunk)))
        if outcome.conflicts or outcome.duplicates:
            raise RuntimeError(f"generated events collided: {outcome}")
        loaded += outcome.loaded
    return loaded


def _count(store: EventStore, *conditions: Any) -> int:
    with store.engine.connect() as connection:
        query = select(func.count()).select_from(nami_events).where(*conditions)
        return int(connection.execute(query).scalar() or 0)


def _build_day(folder: Path, *, events: int, seed: int, day: str) -> dict[str, Any]:
    one_day = date.fromisoformat(day)
    store = EventStore(sqlite_url(folder / "events.sqlite"))
    loaded, cohort, users, production = 0, 0, 0, 0
    in_day = (
        nami_events.c.app_id == PRODUCTION_APP_ID,
        nami_events.c.occurred_at > day_end(one_day - timedelta(days=1)),
        nami_events.c.occurred_at <= day_end(one_day),
    )
    while production < events:
        missing = events - production
        count = max(50, math.ceil(missing / PRODUCTION_EVENTS_PER_USER_DAY * 1.02))
        loaded += _load_generated(
            store, users=count, days=1, start=one_day, seed=seed * 1000 + cohort
        )
        users += count
        cohort += 1
        production = _count(store, *in_day)
    # The snapshot of the day before, as production has it when a day is sent; the day itself
    # is left to the cases (delivery folds it, the large-day snapshot case times it).
    materialize_day(store, SnapshotRepository(store.engine), one_day - timedelta(days=1))
    store.engine.dispose()
    return {"users": users, "loaded": loaded, "events": production}


def day_dataset(work: Path, events: int, seed: int) -> Dataset:
    """At least `events` production-app events on one recent day, with the snapshot of the day
    before computed (delivery reads the state before the day from it).

    Users are added in cohorts until the target is reached, so the count is met whatever the
    generator's mix; the info records the exact numbers.
    """
    parameters = {"events": events, "seed": seed, "day": yesterday().isoformat()}
    return _cached(work, "day", parameters, dated="day")


def throughput_day(work: Path, events: int) -> Dataset:
    """The day every sender of item 2 sends."""
    return day_dataset(work, events, THROUGHPUT_SEED)


def large_day(work: Path, events: int) -> Dataset:
    """The large day of item 6, also the large one-day snapshot of item 4."""
    return day_dataset(work, events, LARGE_DAY_SEED)


def rate_day(work: Path, rate: int, seconds: float) -> Dataset:
    """A day that takes `seconds` to send at `rate` events/s (item 3)."""
    return day_dataset(work, int(rate * seconds), RATE_SEED)


def _build_history(
    folder: Path, *, target: int, days: int, seed: int, start: str
) -> dict[str, Any]:
    first = date.fromisoformat(start)
    users = max(10, round(target / EVENTS_PER_USER_30_DAYS * 30 / max(days, 1)))
    store = EventStore(sqlite_url(folder / "events.sqlite"))
    loaded = _load_generated(store, users=users, days=days, start=first, seed=seed)
    store.engine.dispose()
    return {
        "last_day": (first + timedelta(days=days - 1)).isoformat(),
        "users": users,
        "events": loaded,
    }


def history_dataset(work: Path, events: int, days: int = 30, seed: int = 11) -> Dataset:
    """About `events` events of one user population over `days` days ending before today,
    loaded and not yet snapshotted (the snapshot benchmark computes the last day from scratch)."""
    start = yesterday() - timedelta(days=days - 1)
    parameters = {"target": events, "days": days, "seed": seed, "start": start.isoformat()}
    return _cached(work, "history", parameters, dated="start")


def _build_cohorts(
    folder: Path, *, daily_users: int, days: int, seed: int, first: str
) -> dict[str, Any]:
    first_cohort = date.fromisoformat(first)
    store = EventStore(sqlite_url(folder / "events.sqlite"))
    loaded = 0
    for offset in range(days + COHORT_DAYS - 1):
        loaded += _load_generated(
            store,
            users=daily_users,
            days=COHORT_DAYS,
            start=first_cohort + timedelta(days=offset),
            seed=seed * 1000 + offset,
        )
    store.engine.dispose()
    return {"day_1": (first_cohort + timedelta(days=COHORT_DAYS - 1)).isoformat(), "events": loaded}


def cohort_dataset(work: Path, daily_users: int, days: int = 90, seed: int = 23) -> Dataset:
    """`days` days with the same daily volume: each day a new cohort of `daily_users` users
    starts and is active for a week, so from the first day on seven cohorts overlap (cohorts
    start a week early) while the user base, the history, keeps growing."""
    # Cohorts start a week before day 1 and the last one ends days before today (no event may
    # lie in the future).
    first = yesterday() - timedelta(days=days + 2 * COHORT_DAYS)
    parameters = {
        "daily_users": daily_users,
        "days": days,
        "seed": seed,
        "first": first.isoformat(),
    }
    return _cached(work, "cohorts", parameters, dated="first")


def cohort_day(dataset: Dataset, number: int) -> date:
    """Day `number` (1-based) of a cohort dataset: `number - 1` days of history before it."""
    return date.fromisoformat(dataset.info["day_1"]) + timedelta(days=number - 1)


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "day": _build_day,
    "history": _build_history,
    "cohorts": _build_cohorts,
}
