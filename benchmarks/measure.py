"""Wall time, CPU time (ours and the emulator's) and peak memory, without extra dependencies.

CPU is read from the kernel (`/proc/<pid>/stat`) for the emulator and from `time.process_time`
for this process (all its threads), so a sender's background threads are counted too. Peak
memory of a case is measured in a child process of its own (`ru_maxrss`), because the peak of a
long-lived process only ever goes up and would blame a case for its predecessors.
"""

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds a process has used so far; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, see proc(5)).
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def emulator_pid(emulator: Any) -> int | None:
    """The emulator child's pid. `EmulatorProcess` keeps its `Popen` privately; read it rather
    than guess from process listings (another emulator may run beside it)."""
    process = getattr(emulator, "_process", None)
    return getattr(process, "pid", None)


@dataclass(slots=True)
class Span:
    """What one timed block cost: wall seconds, and CPU seconds here and in the emulator."""

    seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    emulator_cpu_seconds: float | None = None
    load_before: float | None = None
    load_after: float | None = None

    @property
    def client_cores(self) -> float | None:
        return self.client_cpu_seconds / self.seconds if self.seconds > 0 else None

    @property
    def emulator_cores(self) -> float | None:
        if self.emulator_cpu_seconds is None or self.seconds <= 0:
            return None
        return self.emulator_cpu_seconds / self.seconds


@contextmanager
def timed(emulator_process_id: int | None = None) -> Iterator[Span]:
    """Measures the block; the `Span` is filled in when the block exits."""
    span = Span()
    emulator_before = (
        process_cpu_seconds(emulator_process_id) if emulator_process_id is not None else None
    )
    span.load_before = load_average()
    cpu_before = time.process_time() + _children_cpu_seconds()
    started = time.perf_counter()
    try:
        yield span
    finally:
        span.seconds = time.perf_counter() - started
        span.load_after = load_average()
        # Worker processes the block started and waited for count as the client too.
        span.client_cpu_seconds = time.process_time() + _children_cpu_seconds() - cpu_before
        if emulator_before is not None and emulator_process_id is not None:
            after = process_cpu_seconds(emulator_process_id)
            span.emulator_cpu_seconds = None if after is None else after - emulator_before


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def children_peak_rss_mb() -> float:
    """The largest peak RSS among this process's finished children, in MB (0 without any).
    An upper bound: it may include the parent's image forked into a child before its exec."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status (kB), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    `VmHWM` is the high-water mark of this process image only. `ru_maxrss` is not: Linux folds
    the RSS of the forked copy of the parent into it at exec, so a child of a large parent would
    report the parent's peak as its own.
    """
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float | None:
    """This process's resident set size now, in MB."""
    return _status_mb("VmRSS")


def load_average() -> float | None:
    """The machine's one-minute load average: above the core count, other work competed with
    the case for CPU and its numbers are low."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class ChildFailed(RuntimeError):
    """A benchmark child process exited non-zero or printed no result."""


def start_child(task: str, arguments: dict[str, Any]) -> subprocess.Popen[str]:
    """Starts `python -m benchmarks.child TASK` with `arguments` as JSON on stdin; see
    `child_result`. For callers that watch the child while it runs (its CPU, say)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.child", task],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(arguments))
    process.stdin.close()
    process.stdin = None  # sent in full: `communicate` must not touch it again
    return process


def child_result(process: subprocess.Popen[str], task: str, *, timeout: float) -> dict[str, Any]:
    """The JSON object the child prints last. A child still running after `timeout` is killed
    and `subprocess.TimeoutExpired` raised: cases are bounded in time."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = (stderr or stdout)[-2000:]
        raise ChildFailed(f"benchmark child '{task}' exited {process.returncode}: {tail}")
    return json.loads(lines[-1])


def run_child(task: str, arguments: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """Runs `python -m benchmarks.child TASK` and returns the JSON object it prints last. The
    child measures its own peak RSS, so each case's memory is its own."""
    return child_result(start_child(task, arguments), task, timeout=timeout)
