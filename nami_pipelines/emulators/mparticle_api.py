"""The mParticle Events API: `/v2/events`, `/v2/bulkevents` and `/v2/bulkevents/historical`.

Authenticates with the feed's S2S key and secret (HTTP Basic), applies the request and batch
rules, dedups events by `data.source_message_id` per key, and applies `user_attributes` to the
user's profile in arrival order, as mParticle does. The historical endpoint records what it
keeps as not forwarded and never touches profiles.
"""

import base64
import binascii
import hmac
import time
from typing import Any, Final

import orjson

from nami_pipelines.emulators.fault_plan import Api, FaultRule
from nami_pipelines.emulators.faults import PartialReject
from nami_pipelines.emulators.mparticle_rules import (
    MAX_BATCHES_PER_BULK,
    MAX_REQUEST_BYTES,
    Rejection,
    batch_rejection,
    batch_user,
    historical_events,
    parse_bulk,
)
from nami_pipelines.emulators.mparticle_schema import BatchValidator
from nami_pipelines.emulators.recorder import ApiRecorder, Tally
from nami_pipelines.emulators.replies import (
    GATEWAY_STATUSES,
    Incoming,
    Outcome,
    Reply,
    answer_reply,
    empty_reply,
    gateway_reply,
    json_reply,
)
from nami_pipelines.emulators.settings import EmulatorSettings

EVENTS_PATH: Final = "/v2/events"
BULK_PATH: Final = "/v2/bulkevents"
HISTORICAL_PATH: Final = "/v2/bulkevents/historical"
PATHS: Final = (EVENTS_PATH, BULK_PATH, HISTORICAL_PATH)
INJECTED: Final = Rejection("injected_fault", "rejected by an injected partial_reject fault")


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return json_reply(status, {"errors": [{"code": code, "message": message}], **extra})


def _credential_from(header: str | None) -> tuple[str, str] | None:
    """The (key, secret) of an HTTP Basic `Authorization` header, None if there is none."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, separator, secret = decoded.partition(":")
    return (key, secret) if separator else None


class _Refused(Exception):
    """A whole request refused before any batch is looked at."""

    def __init__(self, reason: str, reply: Reply) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


def _read_request(incoming: Incoming) -> list[tuple[Any, int]]:
    """The batches with their sizes, after the request-level rules: size, JSON, and for the
    bulk endpoints a JSON array of at most 100 batches."""
    if len(incoming.body) > MAX_REQUEST_BYTES:
        message = f"request is {len(incoming.body)} bytes, limit {MAX_REQUEST_BYTES}"
        raise _Refused("request_too_large", _error(413, "PAYLOAD_TOO_LARGE", message))
    try:
        if incoming.path == EVENTS_PATH:
            return [(orjson.loads(incoming.body), len(incoming.body))]
        batches = parse_bulk(incoming.body)
    except (ValueError, UnicodeDecodeError) as error:
        invalid = _error(400, "BAD_REQUEST", f"invalid JSON: {error}")
        raise _Refused("invalid_json", invalid) from None
    if batches is None:
        not_array = _error(400, "BAD_REQUEST", "a bulk body is a JSON array")
        raise _Refused("bulk_not_an_array", not_array)
    if len(batches) > MAX_BATCHES_PER_BULK:
        message = f"{len(batches)} batches, limit {MAX_BATCHES_PER_BULK}"
        raise _Refused("too_many_batches", _error(400, "BAD_REQUEST", message))
    return batches


class MParticleEmulator:
    """mParticle's rules and state for every feed (S2S key) configured."""

    api: Final[Api] = "mparticle"

    def __init__(self, recorder: ApiRecorder, validator: BatchValidator) -> None:
        self.recorder = recorder
        self._validator = validator
        self.configure(EmulatorSettings())

    def configure(self, settings: EmulatorSettings) -> None:
        self._credentials = dict(settings.mparticle_credentials)
        self._validate_schema = settings.validate_schema

    def _authenticate(self, header: str | None) -> str | Reply:
        """The S2S key when the key and secret match a configured feed; else mParticle's
        answer: 401 without credentials, 403 with credentials it refuses."""
        credential = _credential_from(header)
        if credential is None:
            return _error(401, "UNAUTHORIZED", "missing S2S key and secret (HTTP Basic)")
        key, secret = credential
        expected = self._credentials.get(key)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            return _error(403, "FORBIDDEN", "the S2S key and secret are not accepted")
        return key

    def handle(self, incoming: Incoming, partial: PartialReject | None, tally: Tally) -> Outcome:
        key = self._authenticate(incoming.headers.get("authorization"))
        if isinstance(key, Reply):
            tally.reject_request("unauthorized" if key.status == 401 else "forbidden")
            return Outcome(key)
        try:
            batches = _read_request(incoming)
        except _Refused as refused:
            tally.reject_request(refused.reason)
            return Outcome(refused.reply, key)
        if incoming.path == EVENTS_PATH:
            return Outcome(self._single(key, *batches[0], partial, tally), key)
        historical = incoming.path == HISTORICAL_PATH
        return Outcome(self._bulk(key, batches, partial, historical, tally), key)

    def _single(
        self, key: str, batch: Any, size: int, partial: PartialReject | None, tally: Tally
    ) -> Reply:
        if partial is not None:
            rejection: Rejection | None = INJECTED
        else:
            rejection = self._accept(key, batch, size, False, tally)
        if rejection is None:
            return empty_reply(202)
        self._reject(key, batch, rejection, None, tally)
        message = f"batch rejected ({rejection.reason}): {rejection.detail}"
        return _error(400, "BAD_REQUEST", message, reason=rejection.reason)

    def _bulk(
        self,
        key: str,
        batches: list[tuple[Any, int]],
        partial: PartialReject | None,
        historical: bool,
        tally: Tally,
    ) -> Reply:
        """Like the real service: 202 for the request, whatever happens to each batch."""
        injected = set(partial.pick(len(batches))) if partial is not None and batches else set()
        for index, (batch, size) in enumerate(batches):
            if index in injected:
                rejection: Rejection | None = INJECTED
            else:
                rejection = self._accept(key, batch, size, historical, tally)
            if rejection is not None:
                self._reject(key, batch, rejection, index, tally)
        return empty_reply(202)

    def _reject(
        self, key: str, batch: Any, rejection: Rejection, index: int | None, tally: Tally
    ) -> None:
        events = batch.get("events") if isinstance(batch, dict) else None
        tally["rejected_batches"] += 1
        tally["rejected_events"] += len(events) if isinstance(events, list) else 0
        tally.reason(rejection.reason)
        source = batch.get("source_request_id") if isinstance(batch, dict) else None
        self.recorder.record(
            "rejected",
            {
                "credential": key,
                "batch_index": index,
                "source_request_id": source,
                "reason": rejection.reason,
                "detail": rejection.detail,
            },
        )

    def _accept(
        self, key: str, batch: Any, size: int, historical: bool, tally: Tally
    ) -> Rejection | None:
        """Applies one batch, or says why it is refused."""
        validator = self._validator if self._validate_schema else None
        rejection = batch_rejection(batch, size, validator)
        if rejection is not None:
            return rejection
        events = batch.get("events") or []
        if historical and not events:
            return Rejection("historical_batch_without_events", "historical batches need events")
        user = batch_user(batch)
        tally["batches"] += 1
        if historical:
            kept, dropped = historical_events(events, int(time.time() * 1000))
            tally["historical_batches"] += 1
            tally["historical_events"] += len(kept)
            for reason, amount in dropped.items():
                tally.historical_drop(reason, amount)
            self._store_events(key, user, batch, kept, True, tally)
            return None
        attributes = batch.get("user_attributes")
        deleted = batch.get("deleted_user_attributes")
        deleted = deleted if isinstance(deleted, list) else None
        if user is not None and (attributes or deleted):
            profile = self.recorder.profile_to_update(key, user)
            profile.update(attributes or {})
            for name in deleted or ():
                profile.pop(name, None)
        if not events and attributes:
            tally["attribute_updates"] += 1
            self.recorder.record(
                "attribute_updates", {"credential": key, "user": user, "batch": batch}
            )
        self._store_events(key, user, batch, events, False, tally)
        return None

    def _store_events(
        self,
        key: str,
        user: str | None,
        batch: dict[str, Any],
        events: list[dict[str, Any]],
        historical: bool,
        tally: Tally,
    ) -> None:
        if not events:
            return
        context = {name: value for name, value in batch.items() if name != "events"}
        tally["events"] += len(events)
        for event in events:
            message_id = (event.get("data") or {}).get("source_message_id")
            if not self.recorder.is_new(key, message_id):
                tally["duplicate_events"] += 1
                continue
            tally["unique_events"] += 1
            if historical:
                tally["historical_unique_events"] += 1
            self.recorder.record(
                "events",
                {
                    "credential": key,
                    "user": user,
                    "historical": historical,
                    "event": event,
                    "batch": context,
                },
            )

    def fault_reply(self, rule: FaultRule) -> Reply:
        """What an injected fault looks like coming from mParticle (or its gateway)."""
        if rule.kind == "throttle":
            headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
            reply = _error(429, "TOO_MANY_REQUESTS", "rate limit exceeded (injected fault)")
            return Reply(reply.status, reply.body, reply.content_type, headers)
        if rule.kind == "too_large":
            return _error(413, "PAYLOAD_TOO_LARGE", "request too large (injected fault)")
        if rule.kind == "answer":
            return answer_reply(rule)
        if rule.status in GATEWAY_STATUSES:
            return gateway_reply(rule.status)
        return _error(rule.status or 500, "SERVER_ERROR", "server error (injected fault)")
