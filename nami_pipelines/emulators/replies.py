"""Framework-free request and reply values, so the API rules never depend on Starlette."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from nami_pipelines.emulators.fault_plan import FaultRule

GATEWAY_STATUSES: Final = (502, 504)


@dataclass(frozen=True)
class Incoming:
    """What an API handler needs from a request: the route, the headers and the raw body."""

    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, built by the API rules and turned into a Starlette response by the app."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """A handled request: its reply, and the credential it authenticated as (None if none),
    so the app can count the request and its status for that credential."""

    reply: Reply
    credential: str | None = None


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A compact JSON reply: both APIs answer JSON, and compact keeps benchmarks honest."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Reply(status=status, body=body, headers=dict(headers or {}))


def text_reply(status: int, text: str) -> Reply:
    """A plain-text reply, as a gateway or Amplitude's Identify API sends."""
    return Reply(status=status, body=text.encode(), content_type="text/plain; charset=utf-8")


def empty_reply(status: int) -> Reply:
    """A reply with no body, as mParticle's 202 Accepted."""
    return Reply(status=status, content_type=None)


def gateway_reply(status: int) -> Reply:
    """A 502 or 504 as a load balancer sends it: plain text, not the API's JSON, so a client
    that insists on parsing error bodies finds out here rather than in production."""
    reason = {502: "Bad Gateway", 504: "Gateway Timeout"}[status]
    return text_reply(status, f"{status} {reason}")


def answer_reply(rule: FaultRule) -> Reply:
    """The `answer` fault: whatever stands at a wrong URL or in front of the API (a 404 page, a
    405, a redirect, a captive portal's HTML with a 200), exactly as the rule says."""
    headers = {} if rule.location is None else {"Location": rule.location}
    body = (rule.body or "").encode()
    return Reply(rule.status or 404, body, rule.content_type, headers)
