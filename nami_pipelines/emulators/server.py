"""Runs the emulator: in this process (`serve`, for `nami-pipelines emulate`) or in a child
process on a free port (`EmulatorProcess`, for tests, benchmarks and the demo)."""

import gc
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import requests
import uvicorn

from nami_pipelines.emulators.api_routes import DROPPED_CONNECTION_LOG
from nami_pipelines.emulators.app import build_app
from nami_pipelines.emulators.control import EmulatorClient
from nami_pipelines.emulators.settings import SETTINGS_VARIABLE, EmulatorSettings

# Senders keep pooled connections between requests; a long keep-alive spares reconnects.
KEEP_ALIVE_SECONDS: Final = 75
START_ATTEMPTS: Final = 3


class _HideIntentionalDrops(logging.Filter):
    """uvicorn logs an error each time a response is cut short; the emulator cuts them short
    on purpose to inject dropped connections, so that line is noise, not a bug report."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != DROPPED_CONNECTION_LOG


def _tune_garbage_collection() -> None:
    """Parsed JSON has no reference cycles, so the cycle collector only costs time here: it
    ran every 700 allocations while parsing each request, and rescans the recorded payloads
    as they pile up. Rarer young collections and a frozen startup heap halve parse time."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve(host: str, port: int, settings: EmulatorSettings | None = None) -> None:
    """Serves both APIs until interrupted. Settings default to `NAMI_EMULATOR_SETTINGS`."""
    app = build_app(settings or EmulatorSettings.from_environment())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    logging.getLogger("uvicorn.error").addFilter(_HideIntentionalDrops())
    _tune_garbage_collection()
    uvicorn.Server(config).run()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class EmulatorProcess(EmulatorClient):
    """An emulator in a child process on a free port of 127.0.0.1, ready once entered.

    Settings travel in `NAMI_EMULATOR_SETTINGS` rather than on the command line, so secrets
    do not show in process listings. The control helpers (`stats()`, `received()`, ...)
    come from `EmulatorClient`.
    """

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 20.0,
    ) -> None:
        self.settings = settings or EmulatorSettings()
        self.host = host
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        # The child's output goes to a file, not a pipe nobody reads (a full pipe would
        # block the server); it explains a failed start and is removed on exit.
        descriptor, log_path = tempfile.mkstemp(prefix="nami-emulator-", suffix=".log")
        os.close(descriptor)
        self._log_path = Path(log_path)
        super().__init__(f"http://{host}:{_free_port(host)}")

    def start(self) -> None:
        """Starts the child and waits for its health check. Another process can take the
        free port between our probe and the child's bind, so a failed start tries a new one."""
        for attempt in range(START_ATTEMPTS):
            if attempt:
                self.url = f"http://{self.host}:{_free_port(self.host)}"
            self._launch()
            if self._wait_until_healthy():
                return
            self.stop()
        output = self._log_path.read_text(errors="replace")
        raise RuntimeError(f"the emulator did not start at {self.url}:\n{output}")

    def _launch(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        environment = {**os.environ, SETTINGS_VARIABLE: json.dumps(self.settings.to_json())}
        command = [sys.executable, "-m", "nami_pipelines.emulators", "--host", self.host]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, "--port", port],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_until_healthy(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                self.health()
                return True
            except requests.ConnectionError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stops the child: SIGTERM lets uvicorn finish in-flight requests, then SIGKILL."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stops the child and releases the HTTP session and the log file."""
        self.stop()
        super().close()
        self._log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
