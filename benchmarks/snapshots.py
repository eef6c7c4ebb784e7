"""Item 4: snapshot compute time and peak memory as events grow, and the incremental day's cost
against the length of history.

From scratch: the last day of a 30-day history is materialized with no day before it, which
folds every event (as the daily asset does for a first day or after a late event). Each size
runs in its own process, so its peak RSS is its own. Incremental: in a 90-day history with the
same volume every day, day N-1 is computed (untimed), then day N is timed, for an early day and
for the last one, in alternating rounds: the target is that the last costs at most 1.5x the early
one.
"""

import itertools
import math
from pathlib import Path
from typing import Any

from benchmarks.datasets import Dataset, cohort_dataset, cohort_day, history_dataset, large_day
from benchmarks.measure import run_child
from benchmarks.report import Row

SECTION = "4 snapshots"
TARGET_GROWTH = 12.0
TARGET_HISTORY_RATIO = 1.5
MEMORY_LIMIT_MB = 1024
_ROUNDS = 2


def _timeout(events: int) -> float:
    return max(300.0, events / 2_000)


def _from_scratch(work: Path, events: int) -> dict[str, Any]:
    dataset = history_dataset(work, events)
    copy = dataset.copy_to(work / "scratch" / f"snapshot-{events}.sqlite")
    try:
        result = run_child(
            "snapshot",
            {"database": str(copy.path), "day": dataset.info["last_day"]},
            timeout=_timeout(dataset.info["events"]),
        )
    finally:
        copy.remove()
    return {**result, "events": dataset.info["events"], "users": dataset.info["users"]}


def _bounded_memory_row(case: str, events: int, result: dict[str, Any], text: str) -> Row:
    """A timed snapshot computation whose target is peak memory under the limit."""
    seconds = result["seconds"]
    return Row(
        section=SECTION,
        case=case,
        events=events,
        seconds=seconds,
        events_per_second=events / seconds if seconds > 0 else None,
        client_cpu=result["client_cpu_seconds"] / seconds if seconds > 0 else None,
        peak_rss_mb=result["peak_rss_mb"],
        result=text,
        target=f"peak < {MEMORY_LIMIT_MB:,} MB",
        met=result["peak_rss_mb"] < MEMORY_LIMIT_MB,
        details=result,
    )


def scaling_rows(work: Path, sizes: list[int]) -> list[Row]:
    rows: list[Row] = []
    measured: list[dict[str, Any]] = []
    for size in sorted(sizes):
        result = _from_scratch(work, size)
        measured.append(result)
        rows.append(
            _bounded_memory_row(
                f"from scratch, {result['events']:,} events over 30 days",
                result["events"],
                result,
                f"{result['users']:,} users; at start {result['baseline_rss_mb']:,.0f} MB",
            )
        )
    for smaller, larger in itertools.pairwise(measured):
        factor = larger["events"] / smaller["events"]
        decades = math.log10(factor) if factor > 1 else 1.0
        growth = (larger["seconds"] / smaller["seconds"]) ** (1 / decades)
        memory = (larger["peak_rss_mb"] / smaller["peak_rss_mb"]) ** (1 / decades)
        rows.append(
            Row(
                section=SECTION,
                case=f"growth {smaller['events']:,} -> {larger['events']:,} events",
                result=f"time x{growth:.1f}, peak memory x{memory:.1f} per 10x events",
                target=f"time <= x{TARGET_GROWTH:g} per 10x",
                met=growth <= TARGET_GROWTH,
                details={"time_per_decade": growth, "memory_per_decade": memory},
            )
        )
    return rows


def _incremental(
    work: Path, daily_users: int, days: int, numbers: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Day N of the cohort history for each N, timed in alternating rounds: whatever else runs
    on the machine then weighs on every day alike, and each day's fastest run is kept."""
    dataset = cohort_dataset(work, daily_users, days)
    timeout = _timeout(dataset.info["events"])
    copies: dict[int, Dataset] = {}
    runs: dict[int, list[dict[str, Any]]] = {number: [] for number in numbers}
    try:
        for number in numbers:
            copies[number] = dataset.copy_to(work / "scratch" / f"incremental-{number}.sqlite")
            # The day before, from scratch and untimed, in a process of its own: its peak memory
            # must not be charged to the incremental day.
            before = cohort_day(dataset, number - 1).isoformat()
            arguments = {"database": str(copies[number].path), "day": before}
            run_child("snapshot", arguments, timeout=timeout)
        for _ in range(_ROUNDS):
            for number in numbers:
                day = cohort_day(dataset, number).isoformat()
                arguments = {"database": str(copies[number].path), "day": day, "repeat": 3}
                runs[number].append(run_child("snapshot", arguments, timeout=timeout))
    finally:
        for copy in copies.values():
            copy.remove()
    return [
        {
            **min(runs[number], key=lambda result: result["seconds"]),
            "day_number": number,
            "day": cohort_day(dataset, number).isoformat(),
            "rounds": [result["runs"] for result in runs[number]],
        }
        for number in numbers
    ]


def history_rows(work: Path, *, daily_users: int, days: int, early_day: int) -> list[Row]:
    rows: list[Row] = []
    measured = _incremental(work, daily_users, days, (early_day, days))
    for result in measured:
        number = result["day_number"]
        seconds = result["seconds"]
        rows.append(
            Row(
                section=SECTION,
                case=f"incremental day {number} of {days}",
                events=result["day_events"],
                seconds=seconds,
                events_per_second=result["day_events"] / seconds if seconds > 0 else None,
                client_cpu=result["client_cpu_seconds"] / seconds if seconds > 0 else None,
                peak_rss_mb=result["peak_rss_mb"],
                result=f"mode {result['mode']}; {result['users']:,} users, "
                f"{result['recomputed_users']:,} recomputed",
                details=result,
            )
        )
    early, late = measured
    ratio = late["seconds"] / early["seconds"] if early["seconds"] > 0 else math.inf
    rows.append(
        Row(
            section=SECTION,
            case=f"day {days} / day {early_day} (same daily volume)",
            result=f"{ratio:.2f}x",
            target=f"<= {TARGET_HISTORY_RATIO:g}x",
            met=ratio <= TARGET_HISTORY_RATIO and early["mode"] == late["mode"] == "incremental",
            details={"ratio": ratio},
        )
    )
    return rows


def large_day_rows(work: Path, events: int) -> list[Row]:
    """The daily snapshot of the large day of item 6 (the same cached database): a day whose
    events do not fit comfortably in memory, where chunking has to bound the peak."""
    dataset = large_day(work, events)
    copy = dataset.copy_to(work / "scratch" / "large-day-snapshot.sqlite")
    try:
        result = run_child(
            "snapshot",
            {"database": str(copy.path), "day": dataset.info["day"]},
            timeout=_timeout(dataset.info["loaded"]) * 4,
        )
    finally:
        copy.remove()
    return [
        _bounded_memory_row(
            f"incremental, one {result['day_events']:,}-event day",
            result["day_events"],
            result,
            f"mode {result['mode']}; {result['recomputed_users']:,} users recomputed",
        )
    ]


def snapshot_rows(
    work: Path,
    *,
    sizes: list[int],
    daily_users: int,
    days: int,
    early_day: int,
    large_day_events: int = 0,
) -> list[Row]:
    rows = scaling_rows(work, sizes)
    rows += history_rows(work, daily_users=daily_users, days=days, early_day=early_day)
    if large_day_events:
        rows += large_day_rows(work, large_day_events)
    return rows
