"""Sample events sent to the stack the way Nami sends them: each one its own signed POST of
Nami's native body to the receiver, several at once and out of order.

The bodies are written to files first (`generate --format nami`'s writer, one file per app), and
the files' lines are posted byte for byte with their signature, so what the receiver verifies is
exactly what was written.
"""

import random
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import requests

from nami_pipelines.receiver.signatures import SIGNATURE_HEADER, sign_hmac_sha256
from nami_pipelines.samples.native_bodies import write_nami_bodies_ndjson

SENDERS = 8
POST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class SignedBody:
    app_id: str
    raw: bytes
    signature: str


@dataclass(frozen=True)
class WebhookAnswers:
    """How the receiver answered a batch: a count per (HTTP status, `status` of the answer)."""

    posted: int
    answers: Counter[tuple[int, str]]

    def only(self, status: int, fate: str) -> bool:
        """Whether every body got this same answer."""
        return self.posted > 0 and self.answers == Counter({(status, fate): self.posted})


def write_signed_bodies(
    folder: Path,
    secrets: Mapping[str, str],
    *,
    users: int,
    days: int,
    start: date,
    seed: int,
) -> list[SignedBody]:
    """The generated journeys of every app in `secrets` (app id -> its webhook secret), as
    Nami's bodies, each signed with its app's secret. Days must be in the past: the receiver
    quarantines timestamps in the future."""
    bodies: list[SignedBody] = []
    for app_id, secret in secrets.items():
        path = folder / f"nami-bodies-{app_id}.ndjson"
        written = write_nami_bodies_ndjson(
            path, users=users, days=days, start=start, seed=seed, app_id=app_id
        )
        lines = path.read_bytes().splitlines()
        assert len(lines) == written, path
        bodies += [SignedBody(app_id, raw, sign_hmac_sha256(raw, secret)) for raw in lines]
    return bodies


def post_bodies(
    receiver_urls: Sequence[str],
    bodies: Sequence[SignedBody],
    *,
    seed: int,
    first_replica: int = 0,
) -> WebhookAnswers:
    """POST every body once, from `SENDERS` threads in a shuffled order (Nami does not
    guarantee order); no retries, so every answer is counted as given. The replicas take turns
    (body i goes to replica i + `first_replica`), as a load balancer spreads them: posting the
    same bodies again with another `first_replica` sends each one to a replica that has not
    seen it."""
    shuffled = [
        (receiver_urls[(index + first_replica) % len(receiver_urls)], body)
        for index, body in enumerate(bodies)
    ]
    random.Random(seed).shuffle(shuffled)
    local = threading.local()
    sessions: list[requests.Session] = []

    def post(receiver_url: str, body: SignedBody) -> tuple[int, str]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            sessions.append(local.session)
        response = local.session.post(
            f"{receiver_url}/webhooks/nami/{body.app_id}",
            data=body.raw,
            headers={SIGNATURE_HEADER: body.signature, "content-type": "application/json"},
            timeout=POST_TIMEOUT_SECONDS,
        )
        return response.status_code, _fate(response)

    try:
        with ThreadPoolExecutor(SENDERS, thread_name_prefix="nami-webhooks") as senders:
            answers = Counter(senders.map(lambda sent: post(*sent), shuffled))
    finally:
        for session in sessions:
            session.close()
    return WebhookAnswers(posted=len(shuffled), answers=answers)


def _fate(response: requests.Response) -> str:
    """The answer's `status` (stored, duplicate, ...) or `error`, else the start of its text."""
    try:
        answer = response.json()
    except ValueError:
        return response.text[:80]
    return str(answer.get("status") or answer.get("error"))
