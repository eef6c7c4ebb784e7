"""A real receiver on a free port (uvicorn in a thread of the test process), a signing sender,
and a TCP relay in front of PostgreSQL that a test can cut and restore."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
import uvicorn

from nami_pipelines.events.store import EventStore
from nami_pipelines.receiver.app import build_receiver_app
from nami_pipelines.receiver.apps import WebhookApp, webhook_apps
from nami_pipelines.receiver.committers import Committer, GroupCommitter
from nami_pipelines.receiver.signatures import sign_hmac_sha256

SECRET = "whsec-test-9d1f7a3c"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def signed_apps(*app_ids: str, monkeypatch: Any) -> dict[str, WebhookApp]:
    """Apps verified with `hmac-sha256` and the shared secret, as an integrations file gives."""
    monkeypatch.setenv("NAMI_WEBHOOK_SECRET", SECRET)
    return webhook_apps({"webhooks": [{"app_id": app_id} for app_id in app_ids]})


class RunningReceiver:
    """The receiver app served by uvicorn on 127.0.0.1, for the duration of a `with`."""

    def __init__(
        self,
        store: EventStore,
        apps: Mapping[str, WebhookApp],
        committer: Committer | None = None,
    ) -> None:
        app = build_receiver_app(store, apps, committer or GroupCommitter(store))
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.session = requests.Session()

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.session.close()

    def post(
        self,
        app_id: str,
        body: dict[str, Any] | bytes,
        *,
        secret: str | None = SECRET,
        signature: str | None = None,
    ) -> requests.Response:
        """POST a body as Nami does, signed with `secret` unless a `signature` is given."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if signature is None and secret is not None:
            signature = sign_hmac_sha256(raw, secret)
        if signature is not None:
            headers["nami-signature"] = signature
        return self.session.post(
            f"{self.url}/webhooks/nami/{app_id}", data=raw, headers=headers, timeout=30
        )


class TcpRelay:
    """Forwards 127.0.0.1:<port> to a target address until `cut()`, which also drops every
    open connection: to the client, the database has gone away. `restore()` listens again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for sock in [listener, *sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


class ReceiverProcess:
    """`nami-pipelines receive` as a user runs it, in a child process on a free port; its
    output (logs included) goes to a file the test reads."""

    def __init__(self, environment: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {**os.environ, **environment}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        command = [sys.executable, "-m", "nami_pipelines.cli", "receive", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                requests.get(f"{self.url}/healthz", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"the receiver did not start:\n{self.log_path.read_text()}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def post(self, app_id: str, raw: bytes, signature: str | None) -> requests.Response:
        headers = {"nami-signature": signature} if signature is not None else {}
        return requests.post(
            f"{self.url}/webhooks/nami/{app_id}", data=raw, headers=headers, timeout=30
        )
