"""Amplitude's HTTP V2 API (`/2/httpapi`), Batch API (`/batch`) and Identify API (`/identify`).

A request is all or nothing, as on the real API: one invalid event or one throttled id and no
event of that request is ingested, so the client must resend the rest. Accepted events are
deduped by `insert_id` per api_key and their `user_properties` applied in arrival order.
"""

import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any, Final

import orjson

from nami_pipelines.emulators.amplitude_rules import (
    BATCH_EPS_PER_ID,
    DEFAULT_MIN_ID_LENGTH,
    HTTPAPI_EPS_PER_ID,
    ID_FIELDS,
    MAX_BATCH_BYTES,
    MAX_HTTPAPI_BYTES,
    MAX_HTTPAPI_EVENTS,
    EventProblems,
    apply_user_properties,
    check_events,
    event_user,
    identification_problem,
)
from nami_pipelines.emulators.fault_plan import Api, FaultRule
from nami_pipelines.emulators.faults import PartialReject
from nami_pipelines.emulators.form_body import parse_form
from nami_pipelines.emulators.rate_limits import SlidingWindowLimit, TokenBucket
from nami_pipelines.emulators.recorder import ApiRecorder, Tally
from nami_pipelines.emulators.replies import (
    GATEWAY_STATUSES,
    Incoming,
    Outcome,
    Reply,
    answer_reply,
    gateway_reply,
    json_reply,
    text_reply,
)
from nami_pipelines.emulators.settings import EmulatorSettings

HTTPAPI_PATH: Final = "/2/httpapi"
BATCH_PATH: Final = "/batch"
IDENTIFY_PATH: Final = "/identify"
PATHS: Final = (HTTPAPI_PATH, BATCH_PATH, IDENTIFY_PATH)
THROTTLED_MESSAGE: Final = "Too many requests for some devices and users"
DAILY_QUOTA_MESSAGE: Final = "Exceeded daily quota for some devices and users"
EPS_PER_ID: Final = {
    HTTPAPI_PATH: HTTPAPI_EPS_PER_ID,
    BATCH_PATH: BATCH_EPS_PER_ID,
    IDENTIFY_PATH: HTTPAPI_EPS_PER_ID,
}


def _error(status: int, message: str, **details: Any) -> Reply:
    return json_reply(status, {"code": status, "error": message, **details})


class _Refused(Exception):
    """A whole request refused; `reason` is what stats count it under (None when the reasons
    were counted per event already)."""

    def __init__(self, reason: str | None, reply: Reply, rejected_events: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply
        self.rejected_events = rejected_events


def _problems_reply(problems: EventProblems) -> Reply:
    """Amplitude's 400 listing, per field, the indexes of the events it refused."""
    if problems.missing_fields:
        message = "Request missing required field"
    elif problems.invalid_fields:
        message = "Invalid field values on some events"
    else:
        message = "Invalid id length for user_id or device_id"
    lists = {
        "events_with_missing_fields": problems.missing_fields,
        "events_with_invalid_fields": problems.invalid_fields,
        "events_with_invalid_id_lengths": problems.invalid_id_lengths,
    }
    return _error(400, message, **{name: value for name, value in lists.items() if value})


def _throttle_reply(
    threshold: int,
    users: dict[str, int],
    devices: dict[str, int],
    events: list[int],
    message: str = THROTTLED_MESSAGE,
    headers: dict[str, str] | None = None,
    **quota: dict[str, int],
) -> Reply:
    body = {
        "code": 429,
        "error": message,
        "eps_threshold": threshold,
        "throttled_users": users,
        "throttled_devices": devices,
        "throttled_events": events,
        **quota,
    }
    return json_reply(429, body, headers)


class AmplitudeEmulator:
    """Amplitude's rules and state for every project (api_key) configured."""

    api: Final[Api] = "amplitude"

    def __init__(self, recorder: ApiRecorder) -> None:
        self.recorder = recorder
        self._windows: dict[tuple[str, str, str], SlidingWindowLimit] = {}
        self._accepted_requests = 0
        self.configure(EmulatorSettings())

    def configure(self, settings: EmulatorSettings) -> None:
        self._api_keys = frozenset(settings.amplitude_api_keys)
        self._project_eps = settings.amplitude_project_eps
        self._daily_id_quota = settings.amplitude_daily_id_quota
        self._buckets: dict[str, TokenBucket] = {}
        self._sent_today: Counter[tuple[str, str, str, date]] = Counter()

    def reset(self) -> None:
        """Forgets rate history with the records, so a test starts from a quiet project."""
        self._windows = {}
        self._buckets = {}
        self._sent_today = Counter()
        self._accepted_requests = 0

    def handle(self, incoming: Incoming, partial: PartialReject | None, tally: Tally) -> Outcome:
        key: str | None = None
        try:
            if incoming.path == IDENTIFY_PATH:
                fields = self._form(incoming)
                key = self._api_key(fields.get("api_key"))
                return Outcome(self._identify(key, fields.get("identification"), tally), key)
            payload = self._json(incoming)
            key = self._api_key(payload.get("api_key"))
            reply = self._upload(key, incoming.path, payload, len(incoming.body), partial, tally)
            return Outcome(reply, key)
        except _Refused as refused:
            tally.reject_request(refused.reason, refused.rejected_events)
            return Outcome(refused.reply, key)

    @staticmethod
    def _size_limit(incoming: Incoming) -> None:
        limit = MAX_BATCH_BYTES if incoming.path == BATCH_PATH else MAX_HTTPAPI_BYTES
        if len(incoming.body) > limit:
            raise _Refused("payload_too_large", _error(413, "Payload too large"))

    def _json(self, incoming: Incoming) -> dict[str, Any]:
        self._size_limit(incoming)
        try:
            payload = orjson.loads(incoming.body)
        except (ValueError, UnicodeDecodeError):
            raise _Refused("invalid_json", _error(400, "Invalid JSON request body")) from None
        if not isinstance(payload, dict):
            raise _Refused("invalid_json", _error(400, "Request body must be a JSON object"))
        return payload

    def _form(self, incoming: Incoming) -> dict[str, str]:
        self._size_limit(incoming)
        try:
            incoming.body.decode()
        except UnicodeDecodeError:
            raise _Refused("invalid_form", _error(400, "Invalid form body")) from None
        return parse_form(incoming.body)

    def _api_key(self, api_key: Any) -> str:
        if not isinstance(api_key, str) or not api_key:
            missing = _error(400, "Request missing required field", missing_field="api_key")
            raise _Refused("missing_api_key", missing)
        if api_key not in self._api_keys:
            raise _Refused("invalid_api_key", _error(400, f"Invalid API key: {api_key}"))
        return api_key

    def _upload(
        self,
        key: str,
        path: str,
        payload: dict[str, Any],
        size: int,
        partial: PartialReject | None,
        tally: Tally,
    ) -> Reply:
        events = payload.get("events")
        if not isinstance(events, list) or not events:
            # An empty list too: so a request with no event checks the key and ingests nothing.
            missing = _error(400, "Request missing required field", missing_field="events")
            raise _Refused("missing_events", missing)
        if path == HTTPAPI_PATH and len(events) > MAX_HTTPAPI_EVENTS:
            raise _Refused("too_many_events", _error(413, "Payload too large"))
        problems = check_events(events, self._min_id_length(payload.get("options")))
        if partial is not None and events:
            problems.invalid_fields["injected_fault"] = partial.pick(len(events))
        if problems:
            for category, lists in (
                ("missing_field", problems.missing_fields),
                ("invalid_field", problems.invalid_fields),
                ("invalid_id_length", problems.invalid_id_lengths),
            ):
                for name, indexes in lists.items():
                    tally.reason(f"{category}:{name}", len(indexes))
            raise _Refused(None, _problems_reply(problems), len(problems.indexes()))
        self._admit(key, path, events)
        self._ingest(key, path, events, tally)
        return json_reply(
            200,
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": size,
                "server_upload_time": int(time.time() * 1000),
            },
        )

    @staticmethod
    def _min_id_length(options: Any) -> int:
        """`options.min_id_length` when given, else Amplitude's default of 5."""
        if options is None:
            return DEFAULT_MIN_ID_LENGTH
        value = options.get("min_id_length") if isinstance(options, dict) else "invalid"
        if value is None:
            return DEFAULT_MIN_ID_LENGTH
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Refused("invalid_options", _error(400, "Invalid options: min_id_length"))
        return value

    def _window(self, path: str, key: str, kind: str) -> SlidingWindowLimit:
        """Each endpoint limits each project's user ids and device ids on its own."""
        window = self._windows.get((path, key, kind))
        if window is None:
            window = SlidingWindowLimit(EPS_PER_ID[path])
            self._windows[(path, key, kind)] = window
        return window

    def _admit(self, key: str, path: str, items: list[dict[str, Any]]) -> None:
        """The per-id limit, then the optional project limit; both refuse the whole request."""
        now = time.monotonic()
        counts = {
            kind: Counter(ident for item in items if (ident := item.get(kind)) is not None)
            for kind in ID_FIELDS
        }
        events = path != IDENTIFY_PATH  # the quota counts events, not identifications
        if events:
            self._within_daily_quota(key, counts, items)
        windows = {kind: self._window(path, key, kind) for kind in ID_FIELDS}
        excess = {kind: windows[kind].excess(counts[kind], now) for kind in ID_FIELDS}
        if excess["user_id"] or excess["device_id"]:
            throttled = [
                index
                for index, item in enumerate(items)
                if item.get("user_id") in excess["user_id"]
                or item.get("device_id") in excess["device_id"]
            ]
            threshold = EPS_PER_ID[path]
            reply = _throttle_reply(threshold, excess["user_id"], excess["device_id"], throttled)
            raise _Refused("throttled_ids", reply)
        if self._project_eps:
            bucket = self._buckets.setdefault(key, TokenBucket(self._project_eps, now))
            if not bucket.take(len(items), now):
                everything = list(range(len(items)))
                message = "Too many requests for this project"
                reply = _throttle_reply(int(self._project_eps), {}, {}, everything, message)
                raise _Refused("project_throttled", reply)
        for kind in ID_FIELDS:
            windows[kind].add(counts[kind], now)
        today = datetime.now(UTC).date()
        for kind in ID_FIELDS if events else ():
            for ident, count in counts[kind].items():
                self._sent_today[(key, kind, ident, today)] += count

    def _within_daily_quota(
        self, key: str, counts: dict[str, Counter], items: list[dict[str, Any]]
    ) -> None:
        """Past a user's or device's daily quota, the whole request is refused with a 429 that
        names them; their events are not to be retried that day."""
        if not self._daily_id_quota:
            return
        today = datetime.now(UTC).date()
        over = {
            kind: {
                ident: self._daily_id_quota
                for ident, count in counts[kind].items()
                if self._sent_today[(key, kind, ident, today)] + count > self._daily_id_quota
            }
            for kind in ID_FIELDS
        }
        if not over["user_id"] and not over["device_id"]:
            return
        listed = [
            index
            for index, item in enumerate(items)
            if item.get("user_id") in over["user_id"] or item.get("device_id") in over["device_id"]
        ]
        reply = _throttle_reply(
            HTTPAPI_EPS_PER_ID,
            {},
            {},
            listed,
            DAILY_QUOTA_MESSAGE,
            exceeded_daily_quota_users=over["user_id"],
            exceeded_daily_quota_devices=over["device_id"],
        )
        raise _Refused("daily_quota", reply)

    def _ingest(self, key: str, path: str, events: list[dict[str, Any]], tally: Tally) -> None:
        tally["events"] += len(events)
        self._accepted_requests += 1
        for event in events:
            if not self.recorder.is_new(key, event.get("insert_id")):
                tally["duplicate_events"] += 1
                continue
            tally["unique_events"] += 1
            user = event_user(event)
            properties = event.get("user_properties")
            if properties:
                apply_user_properties(self.recorder.profile_to_update(key, user), properties)
            self.recorder.record(
                "events",
                {
                    "credential": key,
                    "user": user,
                    "endpoint": path,
                    "request": self._accepted_requests,  # which accepted request carried it
                    "event": event,
                },
            )

    def _identify(self, key: str, raw: str | None, tally: Tally) -> Reply:
        if raw is None:
            missing = _error(400, "Request missing required field", missing_field="identification")
            raise _Refused("missing_identification", missing)
        try:
            parsed = orjson.loads(raw)
        except ValueError:
            raise _Refused("invalid_json", _error(400, "Invalid identification JSON")) from None
        identifications = parsed if isinstance(parsed, list) else [parsed]
        for index, identification in enumerate(identifications):
            problem = identification_problem(identification)
            if problem is not None:
                reply = _error(400, f"identification[{index}]: {problem}")
                raise _Refused("invalid_identification", reply)
        self._admit(key, IDENTIFY_PATH, identifications)
        for identification in identifications:
            user = event_user(identification)
            properties = identification.get("user_properties") or {}
            apply_user_properties(self.recorder.profile_to_update(key, user), properties)
            self.recorder.record(
                "identifications",
                {"credential": key, "user": user, "identification": identification},
            )
        tally["identifies"] += 1
        tally["attribute_updates"] += len(identifications)
        return text_reply(200, "success")

    def fault_reply(self, rule: FaultRule) -> Reply:
        """What an injected fault looks like coming from Amplitude (or its gateway)."""
        if rule.kind == "throttle":
            headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
            return _throttle_reply(HTTPAPI_EPS_PER_ID, {}, {}, [], headers=headers)
        if rule.kind == "too_large":
            return _error(413, "Payload too large")
        if rule.kind == "answer":
            return answer_reply(rule)
        if rule.status in GATEWAY_STATUSES:
            return gateway_reply(rule.status)
        return _error(rule.status or 500, "Internal server error (injected fault)")
