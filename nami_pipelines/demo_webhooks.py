"""The demo's front door: the generated journeys as Nami's webhook bodies, signed with the demo's
secret and posted to a `nami-pipelines receive` process started for the demo, the way Nami sends
them (many at once, a 503 or a dropped connection retried), with the receiver's answers counted.

The senders are plain HTTP clients and know nothing of the receiver's internals: what is stored
is what the receiver acknowledged, exactly as for a real Nami account.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

from nami_pipelines.commands.common import CommandError
from nami_pipelines.events.nami_bodies import body_from_record
from nami_pipelines.receiver.signatures import HMAC_SHA256, SIGNATURE_HEADER, sign_hmac_sha256
from nami_pipelines.samples import generate_events

RECEIVER_HOST: Final = "127.0.0.1"
SENDERS: Final = 16
ATTEMPTS: Final = 6
FIRST_RETRY_SECONDS: Final = 0.2
START_SECONDS: Final = 60.0
# The receiver's answers, in the order the summary shows them.
FATES: Final = ("stored", "duplicate", "quarantined", "not_sent")
NOT_ACKNOWLEDGED: Final = "not_acknowledged"


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """One body as Nami sends it: the raw bytes, the app whose URL it goes to, its signature."""

    app_id: str
    event_id: str
    raw: bytes
    signature: str


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What the receiver finally said about one webhook: its fate on a 2xx (and the wall-clock
    time of that 2xx), else the last status or error after every attempt."""

    webhook: SignedWebhook
    fate: str | None
    acknowledged_at: float | None
    failure: str | None = None


@dataclass(slots=True)
class WebhookTally:
    """The receiver's answers per app, counted by fate, and the webhooks it never acknowledged
    by reason."""

    fates: dict[str, Counter[str]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, answer: WebhookAnswer) -> None:
        of_app = self.fates.setdefault(answer.webhook.app_id, Counter())
        of_app[answer.fate or NOT_ACKNOWLEDGED] += 1
        if answer.fate is None:
            self.failures[answer.failure or "no answer"] += 1

    def rows(self) -> list[dict[str, str | int]]:
        """One row per app: posted, then each fate."""
        return [
            {"app_id": app_id, "posted": sum(counts.values())}
            | {fate: counts[fate] for fate in (*FATES, NOT_ACKNOWLEDGED)}
            for app_id, counts in sorted(self.fates.items())
        ]

    def total(self, fate: str) -> int:
        return sum(counts[fate] for counts in self.fates.values())

    def describe(self) -> str:
        posted = sum(sum(counts.values()) for counts in self.fates.values())
        counts = [f"{self.total(fate)} {fate}" for fate in FATES[:3]]
        if self.total("not_sent"):
            counts.append(f"{self.total('not_sent')} of types not sent")
        if self.failures:
            counts.append(f"{sum(self.failures.values())} not acknowledged")
        return f"{posted} posted: " + ", ".join(counts)


def webhook_entries(app_ids: Sequence[str], secret_variable: str) -> list[dict[str, str]]:
    """The integrations file's `webhooks:` list for these apps, each verified with
    `hmac-sha256` and the secret in `secret_variable`."""
    return [
        {"app_id": app_id, "secret_env": secret_variable, "signature": HMAC_SHA256}
        for app_id in app_ids
    ]


def signed_webhooks(
    records: Iterator[dict], secret: str, *, app_ids: Sequence[str] | None = None
) -> list[SignedWebhook]:
    """Each record as the body Nami would send for it, signed (of `app_ids` only, if given)."""
    webhooks = []
    for record in records:
        if app_ids is not None and record["app_id"] not in app_ids:
            continue
        raw = json.dumps(body_from_record(record), separators=(",", ":")).encode()
        webhooks.append(
            SignedWebhook(record["app_id"], record["event_id"], raw, sign_hmac_sha256(raw, secret))
        )
    return webhooks


def generated_webhooks(
    *, users: int, days: int, start: date, seed: int, secret: str
) -> list[SignedWebhook]:
    """The generated journeys of every app as signed webhook bodies, in generation order."""
    return signed_webhooks(generate_events(users, days, start, seed), secret)


class _Sender:
    """One kept-alive connection per sender thread, as Nami's senders keep theirs. Plain
    `http.client`: a fuller client costs more CPU per request than the receiver spends."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or RECEIVER_HOST, parts.port or 80
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self._local.connection = connection
        return connection

    def _attempt(self, webhook: SignedWebhook) -> tuple[int, bytes]:
        connection = self._connection()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: webhook.signature}
        try:
            connection.request(
                "POST", f"/webhooks/nami/{webhook.app_id}", body=webhook.raw, headers=headers
            )
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self._local.connection = None
            raise

    def post(self, webhook: SignedWebhook) -> WebhookAnswer:
        """Posts until a 2xx or a refusal (4xx); a 5xx or a lost connection is retried with a
        growing pause, as Nami retries."""
        failure = "no attempt"
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(FIRST_RETRY_SECONDS * 2 ** (attempt - 1))
            try:
                status, body = self._attempt(webhook)
            except (OSError, http.client.HTTPException) as error:
                failure = f"no answer ({type(error).__name__})"
                continue
            if 200 <= status < 300:
                fate = json.loads(body).get("status", "stored")
                return WebhookAnswer(webhook, fate, time.time())
            failure = f"HTTP {status}"
            if status < 500:
                break
        return WebhookAnswer(webhook, None, None, failure)


def post_webhooks(
    url: str,
    webhooks: Sequence[SignedWebhook],
    *,
    senders: int = SENDERS,
    rate: float | None = None,
    on_answer: Callable[[WebhookAnswer], None] | None = None,
) -> list[WebhookAnswer]:
    """Posts every webhook from `senders` concurrent senders (so the receiver commits what
    arrives together in one transaction), as fast as answered or, with `rate`, the n-th no
    sooner than n / rate seconds after the start (traffic spread over time, as Nami's is); the
    answers in the webhooks' order."""
    sender = _Sender(url)
    started = time.monotonic()

    def post(index: int, webhook: SignedWebhook) -> WebhookAnswer:
        if rate is not None:
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
        answer = sender.post(webhook)
        if on_answer is not None:
            on_answer(answer)
        return answer

    with ThreadPoolExecutor(max_workers=senders, thread_name_prefix="webhook-sender") as pool:
        return list(pool.map(post, range(len(webhooks)), webhooks))


def post_with_progress(url: str, webhooks: Sequence[SignedWebhook]) -> WebhookTally:
    """`post_webhooks` with a progress bar on stderr (shown on a terminal only)."""
    tally = WebhookTally()
    lock = threading.Lock()
    with tqdm(
        total=len(webhooks), unit="webhook", desc="posting webhooks", file=sys.stderr, disable=None
    ) as bar:

        def counted(answer: WebhookAnswer) -> None:
            with lock:
                tally.add(answer)
                bar.update()

        post_webhooks(url, webhooks, on_answer=counted)
    return tally


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((RECEIVER_HOST, 0))
        return probe.getsockname()[1]


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@contextmanager
def receiver_process(
    integrations_file: Path, environment: Mapping[str, str], log: Path
) -> Iterator[str]:
    """`nami-pipelines receive` on a free local port, as a user runs it, on the integrations
    file given; yields its URL once `/healthz` answers, and stops it (uvicorn finishes what is
    in flight, the writer commits what is queued) on exit. Its output goes to `log`."""
    port = _free_port()
    url = f"http://{RECEIVER_HOST}:{port}"
    command = [sys.executable, "-m", "nami_pipelines.cli", "receive"]
    command += ["--host", RECEIVER_HOST, "--port", str(port)]
    env = {**os.environ, **environment, "NAMI_INTEGRATIONS_FILE": str(integrations_file)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"the demo's webhook receiver did not start: {_last_line(log)}")
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
