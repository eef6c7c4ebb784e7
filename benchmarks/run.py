"""`python -m benchmarks`: every benchmark of the suite, one table, and the same rows as JSON,
CSV and Markdown in `benchmarks/results/`.

Sizes are arguments; the defaults are the issue's sizes. `--quick` shrinks every size for a look
in about two minutes, and `--only` runs some sections. Nothing here asserts on timing: targets are
reported in the `met` column, and the command fails only when a case could not run or an event
was lost or duplicated (unless `--no-fail`).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.datasets import (
    Dataset,
    cohort_dataset,
    history_dataset,
    large_day,
    prepare,
    rate_day,
)
from benchmarks.delivery import memory_rows, throughput_inputs, throughput_rows
from benchmarks.report import Row, contention_note, render_table, skipped_row, write_results

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("delivery", "memory", "snapshots", "rate", "latency", "webhooks")


def _sizes(text: str) -> list[int]:
    """`100000,1e6` -> [100000, 1000000]."""
    return [int(float(part)) for part in text.split(",") if part.strip()]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Throughput against the official SDKs, snapshot scaling, memory, "
        "rate-limit utilization and send latency.",
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help="sections to run: " + ", ".join(SECTIONS)
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes everywhere (about two minutes)"
    )
    parser.add_argument(
        "--events", type=int, default=200_000, help="events of the throughput day (item 2)"
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=4, help="requests in flight, ours and the others'"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="our sender's delivery.workers (processes per day; default: the machine's cores)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of every delivery case; each case's row is its fastest round (item 2)",
    )
    parser.add_argument(
        "--memory-events", type=int, default=1_000_000, help="events of the large day (item 6)"
    )
    parser.add_argument(
        "--snapshot-sizes",
        type=_sizes,
        default=[100_000, 1_000_000],
        help="events of the from-scratch snapshot sizes, e.g. 1e5,1e6,1e7 (item 4; 1e7 takes ~20 min to prepare)",
    )
    parser.add_argument(
        "--large-day-events",
        type=int,
        default=0,
        help="events of a one-day snapshot, e.g. 1e6 (the same day as item 6; 0, the default, "
        "skips it: the 10^6 from-scratch row already shows chunking bound the peak)",
    )
    parser.add_argument(
        "--daily-users",
        type=int,
        default=1_000,
        help="new users per day of the 90-day history (item 4)",
    )
    parser.add_argument(
        "--history-days", type=int, default=90, help="days of the incremental history (item 4)"
    )
    parser.add_argument(
        "--early-day", type=int, default=10, help="the day compared with the last one (item 4)"
    )
    parser.add_argument(
        "--rates",
        type=_sizes,
        default=[1_000, 10_000],
        help="project limits R in events/s (item 3)",
    )
    parser.add_argument(
        "--rate-seconds", type=float, default=15.0, help="seconds of sending per rate (item 3)"
    )
    parser.add_argument(
        "--loads", type=int, default=4, help="batches loaded while the sensor runs (item 5)"
    )
    parser.add_argument(
        "--load-rows", type=int, default=2_000, help="about how many events per load (item 5)"
    )
    parser.add_argument(
        "--sensor-interval", type=int, default=30, help="NAMI_SENSOR_INTERVAL_SECONDS (item 5)"
    )
    parser.add_argument(
        "--latency-webhooks",
        type=int,
        default=600,
        help="webhooks posted over two sensor intervals, timed from 2xx to the emulator "
        "(issue 13 item 6; 0 skips the row)",
    )
    parser.add_argument(
        "--webhooks", type=int, default=20_000, help="webhooks per receiver case (issue 13)"
    )
    parser.add_argument(
        "--webhook-rate", type=float, default=500.0, help="steady webhooks/s of the p99 case"
    )
    parser.add_argument(
        "--webhook-seconds", type=float, default=20.0, help="seconds of the steady-rate case"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "nami-benchmarks",
        help="where generated databases are cached between runs",
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached databases")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder for latest.json/.csv/.md"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="write cProfile output of our senders here"
    )
    parser.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when a case failed to verify"
    )
    return parser


QUICK = {
    "events": 5_000,
    "rounds": 1,
    "memory_events": 20_000,
    "snapshot_sizes": [10_000, 100_000],
    "daily_users": 100,
    "history_days": 30,
    "early_day": 5,
    "rates": [1_000],
    "rate_seconds": 5.0,
    "loads": 2,
    "load_rows": 300,
    "sensor_interval": 5,
    "latency_webhooks": 60,
    "webhooks": 1_000,
    "webhook_seconds": 2.0,
}


SECTION_SECONDS: dict[str, float] = {}


def _section(name: str, build: Callable[[], list[Row]]) -> list[Row]:
    """Runs one section; a section that breaks is reported, the others still run."""
    started = time.monotonic()
    print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
    try:
        rows = build()
    except Exception as error:  # a broken section must not hide the others' results
        reason = f"{type(error).__name__}: {error}"[:300]
        rows = [skipped_row(name, "section failed", reason, error=True)]
    SECTION_SECONDS[name] = time.monotonic() - started
    print(f"[benchmarks] {name} done in {SECTION_SECONDS[name]:.0f}s", file=sys.stderr, flush=True)
    return rows


def _datasets(options: argparse.Namespace, chosen: list[str]) -> list[Callable[[], Dataset]]:
    """The databases the chosen sections read, to build before anything is timed: the large
    ones first, so the small ones fill in beside them instead of waiting behind them."""
    work: Path = options.work_dir
    large: list[Callable[[], Dataset]] = []
    small: list[Callable[[], Dataset]] = []
    if "memory" in chosen:
        large.append(partial(large_day, work, options.memory_events))
    if "snapshots" in chosen:
        if options.large_day_events:
            large.append(partial(large_day, work, options.large_day_events))
        sizes = sorted(options.snapshot_sizes, reverse=True)
        large += [partial(history_dataset, work, size) for size in sizes]
        small.append(partial(cohort_dataset, work, options.daily_users, options.history_days))
    if "delivery" in chosen:
        small.append(partial(throughput_inputs, work, options.events))
    if "rate" in chosen:
        small += [partial(rate_day, work, rate, options.rate_seconds) for rate in options.rates]
    return large + small


def run(options: argparse.Namespace) -> list[Row]:
    work: Path = options.work_dir
    if options.fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    chosen = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise SystemExit(
            f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}"
        )
    started = time.monotonic()
    print("[benchmarks] datasets (built once, reused for a week) ...", file=sys.stderr, flush=True)
    prepare(_datasets(options, chosen), processes=os.cpu_count() or 1)
    SECTION_SECONDS["datasets"] = time.monotonic() - started
    print(f"[benchmarks] datasets ready in {SECTION_SECONDS['datasets']:.0f}s", file=sys.stderr)
    rows: list[Row] = []
    if "delivery" in chosen:
        rows += _section(
            "delivery",
            lambda: throughput_rows(
                work,
                events=options.events,
                max_in_flight=options.max_in_flight,
                workers=options.workers,
                rounds=options.rounds,
                profile_dir=options.profile,
            ),
        )
    if "memory" in chosen:
        rows += _section(
            "memory",
            lambda: memory_rows(work, events=options.memory_events, workers=options.workers),
        )
    if "snapshots" in chosen:
        from benchmarks.snapshots import snapshot_rows

        rows += _section(
            "snapshots",
            lambda: snapshot_rows(
                work,
                sizes=options.snapshot_sizes,
                daily_users=options.daily_users,
                days=options.history_days,
                early_day=options.early_day,
                large_day_events=options.large_day_events,
            ),
        )
    if "rate" in chosen:
        from benchmarks.rate_limits import rate_limit_rows

        rows += _section(
            "rate",
            lambda: rate_limit_rows(
                work, rates=options.rates, seconds=options.rate_seconds, workers=options.workers
            ),
        )
    if "latency" in chosen:
        from benchmarks.latency import latency_rows

        rows += _section(
            "latency",
            lambda: latency_rows(
                work,
                loads=options.loads,
                rows_per_load=options.load_rows,
                interval=options.sensor_interval,
                webhooks=options.latency_webhooks,
            ),
        )
    if "webhooks" in chosen:
        from benchmarks.webhooks import webhook_rows

        rows += _section(
            "webhooks",
            lambda: webhook_rows(
                work,
                webhooks=options.webhooks,
                steady_rate=options.webhook_rate,
                steady_seconds=options.webhook_seconds,
            ),
        )
    return rows


def failed(rows: list[Row]) -> list[Row]:
    """Rows that mean the benchmark itself did not work (not a missed target): a section or a
    case that broke, or an event lost or duplicated. A missing SDK is a skip, not a failure."""
    return [row for row in rows if row.exactly_once is False or row.error]


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.quick:
        defaults = parser().parse_args([])
        for name, value in QUICK.items():
            if getattr(options, name) == getattr(defaults, name):
                setattr(options, name, value)
    started = time.monotonic()
    rows = run(options)
    total = time.monotonic() - started
    print(render_table(rows))
    note = contention_note(rows)
    if note:
        print(f"\n{note}")
    arguments: dict[str, Any] = {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(options).items()
    }
    paths = write_results(rows, options.results, arguments, total, SECTION_SECONDS)
    print(
        f"\n{len(rows)} rows in {total:.0f}s; written to {paths['json']}, {paths['csv']}, {paths['markdown']}"
    )
    broken = failed(rows)
    if broken and not options.no_fail:
        print(
            f"{len(broken)} case(s) failed or lost events: "
            + "; ".join(row.case for row in broken),
            file=sys.stderr,
        )
        return 1
    return 0
