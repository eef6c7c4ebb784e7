"""Long-running child processes (dagster-webserver, dagster-daemon) that a test owns.

Each one starts in its own session, so it is the leader of a process group that also holds every
process it spawns (the code servers, the run workers): stopping the group stops them all, and
nothing outlives the test. Output goes to a log file, never to a pipe nobody reads (a full pipe
would block the child), and the log's tail goes into failure messages.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")

STOP_GRACE_SECONDS = 20.0
KILL_WAIT_SECONDS = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def answers_ok(url: str, timeout: float = 5.0) -> bool:
    """Whether a GET of `url` answers 200 now (a server that is not up yet answers nothing)."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
    explain: Callable[[], str] | None = None,
) -> T:
    """Calls `probe` until it returns something truthy, or fails after `timeout` seconds with
    what was awaited (and `explain()`, e.g. a process log), so no test waits forever."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"gave up after {timeout:.0f}s waiting for {what}{_details(explain)}"
            )
        time.sleep(interval)


def _details(explain: Callable[[], str] | None) -> str:
    """What `explain` says, without letting its own failure hide the timeout."""
    if explain is None:
        return ""
    try:
        return f"\n{explain()}"
    except Exception as error:
        return f"\n(could not gather details: {error!r})"


class ManagedProcess:
    """A child process and its whole process group, with its output in `log_path`."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.group = self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 60) -> str:
        """The end of the process's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"[{self.name}: no log]"
        kept = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.name} ({self.log_path}) ---\n{kept}"

    def _group_alive(self) -> bool:
        """Whether any live (non-zombie) process is left in the group. Read from /proc where it
        exists, since a zombie nobody reaps would keep `killpg(group, 0)` succeeding."""
        proc = Path("/proc")
        if not proc.is_dir():
            try:
                os.killpg(self.group, 0)
            except (ProcessLookupError, PermissionError):
                return False
            return True
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended while we looked
            state, group = fields[0], int(fields[2])
            if group == self.group and state not in ("Z", "X"):
                return True
        return False

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.group, signum)

    def _wait_group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.popen.poll()  # reap the leader, or the group never looks empty
            if not self._group_alive():
                return True
            time.sleep(0.1)
        self.popen.poll()
        return not self._group_alive()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to the group (dagster shuts its code servers and threads down), then SIGKILL
        whatever is left after `grace` seconds. Bounded: returns within grace + 10 s."""
        if not self._group_alive():
            self.popen.poll()
            return
        self._signal_group(signal.SIGTERM)
        if self._wait_group_gone(grace):
            return
        self._signal_group(signal.SIGKILL)
        self._wait_group_gone(KILL_WAIT_SECONDS)
