"""Item 3: how much of a project's rate limit our Amplitude sender uses.

The emulator limits the project to R events/s (a token bucket with a one-second burst) and
answers 429 with every event of the request listed as throttled, as Amplitude does for a
project over its quota; identifications (the attribute updates) count against the same rate, as
they do at Amplitude. Our sender delivers a day of about R x `seconds` events and the touched
users' attribute updates; a thread polls the emulator's counters meanwhile. Utilization is what
the project took (events and identifications) over the time from the first request to the last
one taken, divided by R. The target is at least 90% of R with no
event lost and no retry storm; the 429s are reported. A run that does not finish in its time
budget is stopped (its events stay pending in the ledger, as after a crash) and reported as such.
"""

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import emulator_settings
from benchmarks.datasets import rate_day
from benchmarks.delivery import received
from benchmarks.measure import (
    ChildFailed,
    child_result,
    emulator_pid,
    process_cpu_seconds,
    start_child,
)
from benchmarks.report import Row
from nami_pipelines.emulators import EmulatorProcess

SECTION = "3 rate limit"
TARGET_SHARE = 0.9
POLL_SECONDS = 0.2


class _Poller:
    """Samples the emulator's Amplitude counters, and the sender's CPU, until stopped."""

    def __init__(self, emulator: EmulatorProcess, sender_pid: int) -> None:
        self.emulator = emulator
        self.sender_pid = sender_pid
        # (time, requests, events and identifications taken)
        self.samples: list[tuple[float, int, int]] = []
        self.cpu: list[tuple[float, float]] = []  # (time, sender CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            view = received(self.emulator.stats(), "amplitude")
            now = time.monotonic()
            taken = view["unique_events"] + view["attribute_updates"]
            self.samples.append((now, view["requests"], taken))
            cpu = process_cpu_seconds(self.sender_pid)
            if cpu is not None:
                self.cpu.append((now, cpu))
            self._stop.wait(POLL_SECONDS)

    def sender_cores(self) -> float | None:
        """The sender's CPU use over the run, in cores: near 1.0 while every event waits out a
        throttle means it spins instead of sleeping."""
        if len(self.cpu) < 2:
            return None
        (start, first), (end, last) = self.cpu[0], self.cpu[-1]
        return (last - first) / (end - start) if end > start else None

    def __enter__(self) -> "_Poller":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def sending_window(self) -> tuple[float, float] | None:
        """From the first sample with a request to the first sample with the final count."""
        started = next((t for t, requests, _ in self.samples if requests > 0), None)
        if started is None or not self.samples:
            return None
        final = self.samples[-1][2]
        finished = next(t for t, _, events in self.samples if events == final)
        return started, finished


def _one_rate(work: Path, rate: int, seconds: float, max_in_flight: int, workers: int) -> Row:
    dataset = rate_day(work, rate, seconds)
    expected = dataset.info["events"]
    budget = max(60.0, seconds * 4)
    copy = dataset.copy_to(work / "scratch" / f"rate-{rate}.sqlite")
    outcome: dict[str, Any] = {}
    with EmulatorProcess(emulator_settings(amplitude_project_eps=rate)) as emulator:
        arguments = {
            "api": "amplitude",
            "database": str(copy.path),
            "day": dataset.info["day"],
            "url": emulator.url,
            "emulator_pid": emulator_pid(emulator),
            "max_in_flight": max_in_flight,
            "workers": workers,
        }
        child = start_child("ours", arguments)
        with _Poller(emulator, child.pid) as poller:
            try:
                outcome = child_result(child, "ours", timeout=budget)
            except subprocess.TimeoutExpired:
                outcome = {"stopped_after_seconds": budget}
            except ChildFailed as error:
                outcome = {"error": str(error)[-300:]}
            time.sleep(POLL_SECONDS * 2)
        view = received(emulator.stats(), "amplitude")
    copy.remove()
    window = poller.sending_window()
    accepted = view["unique_events"]
    identified = view["attribute_updates"]
    throttled = view["responses"].get("429", 0)
    duration = (window[1] - window[0]) if window else None
    achieved = (accepted + identified) / duration if duration else None
    share = achieved / rate if achieved is not None else None
    finished = "stopped_after_seconds" not in outcome and "error" not in outcome
    lost = expected - accepted if finished else None
    storm = throttled > max(10, view["requests"] // 2)
    text = (f"{share:.0%} of R; " if share is not None else "") + (
        f"{accepted:,} events + {identified:,} identifications; "
        f"{throttled} x 429 in {view['requests']} requests"
    )
    if not finished:
        text += (
            f"; stopped after {budget:.0f}s with {accepted:,} of {expected:,} accepted"
            if "stopped_after_seconds" in outcome
            else f"; failed: {outcome['error']}"
        )
    return Row(
        section=SECTION,
        case=f"Amplitude: ours at R = {rate:,} events/s",
        events=accepted,
        seconds=duration,
        events_per_second=achieved,
        client_cpu=poller.sender_cores(),
        peak_rss_mb=outcome.get("peak_rss_mb"),
        # A stopped run leaves its unsent events pending in the ledger: not lost, not checked.
        exactly_once=(view["duplicate_events"] == 0 and lost == 0) if finished else None,
        result=text,
        target=f">= {TARGET_SHARE:.0%} of R, none lost, no 429 storm",
        error="error" in outcome,
        met=bool(
            finished and share is not None and share >= TARGET_SHARE and lost == 0 and not storm
        ),
        details={
            "rate": rate,
            "expected": expected,
            "accepted": accepted,
            "identifications": identified,
            "throttled_responses": throttled,
            "requests": view["requests"],
            "duplicates": view["duplicate_events"],
            "samples": len(poller.samples),
            "child": outcome,
        },
    )


def rate_limit_rows(
    work: Path, *, rates: list[int], seconds: float, max_in_flight: int = 4, workers: int = 1
) -> list[Row]:
    return [_one_rate(work, rate, seconds, max_in_flight, workers) for rate in rates]
