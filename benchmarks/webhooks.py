"""Webhook intake: our receiver (group commit) against a plain receiver that commits each request
on its own, on the same stack and database, with 16 concurrent senders, on SQLite and (where
`NAMI_BENCHMARK_POSTGRES_URL` names a server) PostgreSQL. Reported: webhooks/s, p50/p99 latency
of the 2xx, and that every webhook was stored exactly once; on PostgreSQL also the p99 at a
steady 500 webhooks/s.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import requests
import sqlalchemy as sa

from benchmarks.measure import process_cpu_seconds
from benchmarks.report import Row, skipped_row
from nami_pipelines.events.nami_bodies import body_from_record
from nami_pipelines.receiver.signatures import sign_hmac_sha256
from nami_pipelines.samples import PRODUCTION_APP_ID, generate_events

SECTION: Final = "13 webhooks"
SENDERS: Final = 16
POSTGRES_VARIABLE: Final = "NAMI_BENCHMARK_POSTGRES_URL"
SECRET: Final = "benchmark-webhook-secret"
SQLITE_RATIO_TARGET: Final = 3.0
POSTGRES_RATE_TARGET: Final = 2_000
STEADY_P99_TARGET_MS: Final = 100.0


def signed_bodies(count: int) -> list[tuple[bytes, str]]:
    """`count` webhook bodies of generated journeys, each with its signature (made up front, so
    the senders only send)."""
    bodies: list[tuple[bytes, str]] = []
    records = generate_events(users=count, days=3, start=date(2026, 2, 1), seed=13)
    for record in records:
        if record["app_id"] != PRODUCTION_APP_ID:
            continue
        raw = json.dumps(body_from_record(record), separators=(",", ":")).encode()
        bodies.append((raw, sign_hmac_sha256(raw, SECRET)))
        if len(bodies) == count:
            break
    return bodies


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _receiver(mode: str, database_url: str) -> Iterator[tuple[str, int]]:
    port = _free_port()
    command = [sys.executable, "-m", "benchmarks.webhook_server", "--mode", mode]
    command += ["--db", database_url, "--app", PRODUCTION_APP_ID, "--port", str(port)]
    environment = {**os.environ, "NAMI_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {mode} receiver did not start: {process.stderr.read()}")
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _sender(
    host: str, port: int, requests_to_send: list[tuple[int, bytes]], plan: "_Plan"
) -> None:
    """One sender on one kept-alive connection, speaking HTTP/1.1 itself: a client library
    would cost more CPU than the receiver under test, and the machine has 2 cores."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for index, request in requests_to_send:
            if plan.rate is not None:
                delay = plan.started + index / plan.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            plan.latencies[index] = time.perf_counter() - sent
            if status_line.split(b" ", 2)[1] != b"200":
                plan.failures += 1
    finally:
        writer.close()


@dataclass(slots=True)
class _Plan:
    rate: float | None
    latencies: list[float]
    started: float = 0.0
    failures: int = 0


def _send_all(
    url: str, bodies: list[tuple[bytes, str]], rate: float | None
) -> tuple[float, list[float], int]:
    """Send every body from `SENDERS` concurrent senders, as fast as answered or on a steady
    schedule of `rate` per second; wall seconds, latencies, non-2xx count."""
    host, port = url.removeprefix("http://").split(":")
    path = f"/webhooks/nami/{PRODUCTION_APP_ID}"
    encoded = [
        (
            f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"nami-signature: {signature}\r\ncontent-length: {len(raw)}\r\n\r\n"
        ).encode()
        + raw
        for raw, signature in bodies
    ]
    plan = _Plan(rate, [0.0] * len(bodies))

    async def run() -> None:
        plan.started = time.perf_counter()
        shares = [
            [(index, encoded[index]) for index in range(lane, len(encoded), SENDERS)]
            for lane in range(SENDERS)
        ]
        await asyncio.gather(*(_sender(host, int(port), share, plan) for share in shares))

    asyncio.run(run())
    return time.perf_counter() - plan.started, plan.latencies, plan.failures


def _stored(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM nami_events")).scalar())
    finally:
        engine.dispose()


def _percentile_ms(latencies: list[float], fraction: float) -> float:
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _case(
    database: str, mode: str, url_for_run: str, bodies: list[tuple[bytes, str]], rate: float | None
) -> Row:
    with _receiver(mode, url_for_run) as (url, pid):
        cpu_before = process_cpu_seconds(pid)
        seconds, latencies, failures = _send_all(url, bodies, rate)
        cpu_after = process_cpu_seconds(pid)
    stored = _stored(url_for_run)
    p50, p99 = _percentile_ms(latencies, 0.5), _percentile_ms(latencies, 0.99)
    label = "ours (group commit)" if mode == "group" else "plain (one commit per request)"
    paced = f" at {rate:,.0f}/s" if rate else ""
    receiver_cores = (
        (cpu_after - cpu_before) / seconds if cpu_before is not None and cpu_after else None
    )
    return Row(
        section=SECTION,
        case=f"{database}: {label}{paced}",
        events=len(bodies),
        seconds=seconds,
        events_per_second=len(bodies) / seconds,
        exactly_once=stored == len(bodies) and failures == 0,
        result=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {failures} non-2xx, {stored} stored"
        + (f", receiver {receiver_cores:.2f} cores" if receiver_cores is not None else ""),
        details={
            "p50_ms": p50,
            "p99_ms": p99,
            "senders": SENDERS,
            "receiver_cores": receiver_cores,
            "non_2xx": failures,
        },
    )


@contextmanager
def _postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema for one run, selected through the URL so the receiver process sees it."""
    schema = f"bench_webhooks_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def webhook_rows(
    work: Path, *, webhooks: int, steady_rate: float, steady_seconds: float
) -> list[Row]:
    """Both receivers on each database, then the steady-rate case on PostgreSQL."""
    bodies = signed_bodies(webhooks)
    steady = signed_bodies(int(steady_rate * steady_seconds))
    rows: list[Row] = []
    folder = work / "webhooks"
    folder.mkdir(parents=True, exist_ok=True)
    by_case: dict[tuple[str, str], Row] = {}
    for mode in ("group", "plain"):
        database = folder / f"{mode}-{uuid.uuid4().hex[:8]}.sqlite"
        by_case["SQLite", mode] = _case("SQLite", mode, f"sqlite:///{database}", bodies, None)
        for path in folder.glob(database.name + "*"):
            path.unlink()
    postgres = os.environ.get(POSTGRES_VARIABLE)
    if postgres:
        for mode in ("group", "plain"):
            with _postgres_schema(postgres) as url:
                by_case["PostgreSQL", mode] = _case("PostgreSQL", mode, url, bodies, None)
        with _postgres_schema(postgres) as url:
            steady_row = _case("PostgreSQL", "group", url, steady, steady_rate)
    ratio = (
        by_case["SQLite", "group"].events_per_second / by_case["SQLite", "plain"].events_per_second
    )
    rows += [by_case["SQLite", "group"], by_case["SQLite", "plain"]]
    rows.append(
        Row(
            section=SECTION,
            case="SQLite: group commit vs plain",
            result=f"x{ratio:.1f}",
            target=f">= x{SQLITE_RATIO_TARGET:.0f}",
            met=ratio >= SQLITE_RATIO_TARGET,
        )
    )
    if not postgres:
        rows.append(skipped_row(SECTION, "PostgreSQL", f"set {POSTGRES_VARIABLE} to a server"))
        return rows
    ours = by_case["PostgreSQL", "group"]
    ours.target = f">= {POSTGRES_RATE_TARGET:,}/s"
    ours.met = (ours.events_per_second or 0) >= POSTGRES_RATE_TARGET
    steady_row.target = f"p99 < {STEADY_P99_TARGET_MS:.0f} ms"
    steady_row.met = steady_row.details["p99_ms"] < STEADY_P99_TARGET_MS
    rows += [ours, by_case["PostgreSQL", "plain"], steady_row]
    return rows
