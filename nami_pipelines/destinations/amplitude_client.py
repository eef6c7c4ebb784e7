"""Sends to one Amplitude project: HTTP V2 (or the Batch API for backfills) for events, the
Identify API for attribute-only updates, and what each response means (docs/amplitude.md)."""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nami_pipelines.config import AmplitudeIntegration
from nami_pipelines.destinations.amplitude_answers import (
    is_identify_answer,
    is_key_refused,
    over_daily_quota,
    project_wide,
    rejected_positions,
    throttled_by_id,
)
from nami_pipelines.destinations.amplitude_mapping import (
    amplitude_request_options,
    build_amplitude_events,
    build_identifications,
)
from nami_pipelines.destinations.answers import (
    credentials_refused,
    display_url,
    is_json_object,
    is_retried,
    wrong_destination,
)
from nami_pipelines.destinations.client import DeliverySink
from nami_pipelines.destinations.credential_check import (
    CredentialCheck,
    check_transport,
    checked,
    undecided,
)
from nami_pipelines.destinations.http import (
    Dispatcher,
    DispatchStats,
    Handling,
    Retry,
    RetryPolicy,
    parse_json,
    response_summary,
)
from nami_pipelines.destinations.limits import encode
from nami_pipelines.destinations.mparticle_client import routed, skipped_outcomes
from nami_pipelines.destinations.outcomes import (
    ACCEPTED,
    REJECTED,
    OutcomeGroup,
    RequestRefused,
    Stop,
)
from nami_pipelines.destinations.outgoing import AttributeUpdateTarget, OutgoingEvents
from nami_pipelines.destinations.pacing import SendPacer
from nami_pipelines.destinations.packing import (
    PackedRequest,
    pack_amplitude_requests,
    split_amplitude_request,
    take_items,
)
from nami_pipelines.destinations.transport import HttpResponse, HttpTransport
from nami_pipelines.snapshots.attributes import UserAttributes

EventsRequest = PackedRequest[dict[str, Any]]
JSON_HEADERS = {"Content-Type": "application/json"}
THROTTLE_HOLD_SECONDS = 30.0
DEFAULT_EPS_THRESHOLD = 30
IDENTIFICATIONS_PER_REQUEST = 500
BATCH_API_MAX_REQUEST_BYTES = 20_000_000


@dataclass(frozen=True, slots=True, repr=False)
class IdentifyRequest:
    """One Identify API call; its form holds the API key, so it is never shown in a repr."""

    users: tuple[str, ...]
    identification: str

    def __repr__(self) -> str:
        return f"IdentifyRequest({len(self.users)} users)"


class AmplitudeClient:
    """One project's sender."""

    def __init__(
        self,
        integration: AmplitudeIntegration,
        *,
        policy: RetryPolicy | None = None,
        throttle_hold_seconds: float = THROTTLE_HOLD_SECONDS,
        seed: int | None = None,
    ) -> None:
        self.integration = integration
        tuning = integration.delivery
        self.policy = policy or RetryPolicy(max_attempts=tuning.max_attempts)
        self.transport = HttpTransport(
            timeout=tuning.timeout_seconds, pool_size=tuning.max_in_flight
        )
        self.throttle_hold_seconds = throttle_hold_seconds
        self.stats = DispatchStats()
        self.pacer = SendPacer(share=1 / tuning.workers, stated_rate=tuning.events_per_second)
        self.seed = seed

    def _dispatcher(self, send, handle, event_ids) -> Dispatcher:
        return Dispatcher(
            stats=self.stats,
            send=send,
            handle=handle,
            event_ids=event_ids,
            integration=self.integration.name,
            max_in_flight=self.integration.delivery.max_in_flight,
            policy=self.policy,
            seed=self.seed,
        )

    def handle(self, request: EventsRequest, response: HttpResponse) -> Handling[EventsRequest]:
        """The meaning of one HTTP V2 / Batch API response (docs/amplitude.md).

        Every answer of Amplitude's is JSON with `code`; only its 400s judge events. Anything
        else (404, 405, a redirect, a page in place of its JSON) stops the integration.
        """
        status = response.status
        if status == 200 and is_json_object(response):
            self.pacer.accepted()
            return Handling(
                outcomes=[OutcomeGroup(ACCEPTED, None, request.event_ids)], accepted=True
            )
        if is_key_refused(response):
            return Handling(stop=credentials_refused("Amplitude", response, "API key"))
        body = parse_json(response.body)
        if status == 400 and isinstance(body, dict):
            return self._partly_invalid(request, response, body)
        body = body if isinstance(body, dict) else {}
        if status == 413:
            if len(request.items) == 1:
                # Packing keeps every event under the limits: retried (bounded), not dropped.
                return Handling(retries=[Retry(request, response_summary(response))])
            return Handling(
                retries=[
                    Retry(half, "HTTP 413: split", delay=0, counts_as_attempt=False)
                    for half in split_amplitude_request(request)
                ]
            )
        if status == 429:
            return self._throttled(request, response, body)
        if is_retried(status):
            # 500/502/504 may have been ingested: resending is safe, insert_id deduplicates.
            return Handling(retries=[Retry(request, response_summary(response))])
        return Handling(stop=wrong_destination("Amplitude", response, "endpoint"))

    def _partly_invalid(
        self, request: EventsRequest, response: HttpResponse, body: dict
    ) -> Handling[EventsRequest]:
        """Dead-letter exactly the events Amplitude named; resend the rest (nothing was taken)."""
        problems = rejected_positions(body)
        if not problems:
            reason = (
                f"Amplitude refused the request without naming an event "
                f"(POST {display_url(response.url)}: {response_summary(response, limit=200)})"
            )
            return Handling(stop=Stop(reason, RequestRefused))
        error = body.get("error", "invalid events")
        by_reason: dict[str, list[str]] = {}
        for position, found in sorted(problems.items()):
            if position < len(request.items):
                reason = f"HTTP 400: {error}: {'; '.join(found)}"
                by_reason.setdefault(reason, []).append(request.items[position]["insert_id"])
        outcomes = [OutcomeGroup(REJECTED, reason, tuple(ids)) for reason, ids in by_reason.items()]
        rest = [p for p in range(len(request.items)) if p not in problems]
        retries = (
            [Retry(take_items(request, rest), "resend after 400", delay=0, counts_as_attempt=False)]
            if rest
            else []
        )
        return Handling(outcomes=outcomes, retries=retries)

    def _throttled(
        self, request: EventsRequest, response: HttpResponse, body: dict
    ) -> Handling[EventsRequest]:
        """Project-wide: pace under the stated rate and resend at once (the pacer spaces them).
        For busy ids: resend the others at once; the throttled ids' events in waves, ~30 s
        apart, each with at most half the allowed events per id, so a heavy user is not
        throttled forever."""
        over_quota = over_daily_quota(body, request.items)
        if over_quota:
            return self._over_daily_quota(request, response, body, over_quota)
        ids = [str(item.get("user_id") or item.get("device_id")) for item in request.items]
        by_id = throttled_by_id(body, ids)
        reason = response_summary(response, limit=200)
        retry_after = response.retry_after()
        if not by_id:
            delay = None if retry_after is None else self.policy.honour(retry_after)
            return Handling(retries=[Retry(request, reason, delay=delay)])
        throttled = sorted(position for positions in by_id.values() for position in positions)
        others = sorted(set(range(len(ids))) - set(throttled))
        rest = (
            [Retry(take_items(request, others), reason, delay=0, counts_as_attempt=False)]
            if others
            else []
        )
        threshold = int(body.get("eps_threshold") or DEFAULT_EPS_THRESHOLD)
        if project_wide(body, by_id):
            self.pacer.throttled(threshold, len(throttled))
            delay = 0.0 if retry_after is None else self.policy.honour(retry_after)
            paced = Retry(
                take_items(request, throttled), reason, delay=delay, counts_as_attempt=False
            )
            return Handling(retries=[paced, *rest])
        per_wave = max(1, threshold // 2)
        waves: list[list[int]] = []
        for positions in by_id.values():
            for wave, start in enumerate(range(0, len(positions), per_wave)):
                if wave == len(waves):
                    waves.append([])
                waves[wave].extend(positions[start : start + per_wave])
        held = [
            Retry(take_items(request, wave), reason, delay=self.throttle_hold_seconds * (n + 1))
            for n, wave in enumerate(waves)
        ]
        return Handling(retries=[*held, *rest])

    def _over_daily_quota(
        self, request: EventsRequest, response: HttpResponse, body: dict, over: list[int]
    ) -> Handling[EventsRequest]:
        """Events of users or devices past their daily quota wait for a later run (Amplitude
        would refuse them all day); the rest of the request goes again at once."""
        users = sorted(body.get("exceeded_daily_quota_users") or {})
        devices = sorted(body.get("exceeded_daily_quota_devices") or {})
        named = ", ".join([*(f"user {u}" for u in users), *(f"device {d}" for d in devices)])
        reason = (
            f"HTTP 429: Amplitude's daily quota is spent for {named[:200]}; "
            "not retried until a later run"
        )
        others = [position for position in range(len(request.items)) if position not in over]
        rest = (
            [
                Retry(
                    take_items(request, others),
                    "resend after 429",
                    delay=0,
                    counts_as_attempt=False,
                )
            ]
            if others
            else []
        )
        return Handling(retries=rest, held=[(take_items(request, over), reason)])

    def check_credentials(self) -> CredentialCheck:
        """HTTP V2 with an empty `events` list: Amplitude checks the key first ("Invalid API
        key"), then answers that events are missing, so nothing is ever ingested."""
        transport = check_transport(self.integration.delivery.timeout_seconds)
        body = encode({"api_key": self.integration.api_key(), "events": []})
        response = transport.post(self.integration.httpapi_url, data=body, headers=JSON_HEADERS)
        if is_key_refused(response):
            return checked("refused", response, "Amplitude refused the API key")
        if response.status in (200, 400) and is_json_object(response):
            return checked("accepted", response, "the API key is accepted")
        return undecided(response, "Amplitude", "endpoint")

    def send_events(self, events: OutgoingEvents, *, historical: bool, sink: DeliverySink) -> None:
        mapped, skipped = build_amplitude_events(events, self.integration)
        sink.outcomes(skipped_outcomes(skipped), 0)
        use_batch = historical and self.integration.use_batch_api_for_backfills
        url = self.integration.batch_url if use_batch else self.integration.httpapi_url
        api_key = self.integration.api_key()
        packed = pack_amplitude_requests(
            mapped,
            api_key,
            options=amplitude_request_options(self.integration),
            max_events=self.integration.delivery.events_per_request,
            **({"max_request_bytes": BATCH_API_MAX_REQUEST_BYTES} if use_batch else {}),
        )

        def send(request: EventsRequest) -> HttpResponse:
            self.pacer.wait_turn(len(request.items))
            return self.transport.post(url, data=request.body, headers=JSON_HEADERS)

        self._dispatcher(send, self.handle, lambda request: request.event_ids).run(
            routed(packed, sink), on_outcomes=sink.outcomes, on_unresolved=sink.unresolved
        )

    def _redacted_key(self) -> str:
        """Previews show where the key goes, never the key."""
        return f"${{{self.integration.credentials.api_key_env}}}"

    def render_events(self, events: OutgoingEvents) -> Iterator[bytes]:
        """The request bodies `send_events` would send, API key redacted (for previews)."""
        mapped, _ = build_amplitude_events(events, self.integration)
        options = amplitude_request_options(self.integration)
        per_request = self.integration.delivery.events_per_request
        packed = pack_amplitude_requests(
            mapped, self._redacted_key(), options=options, max_events=per_request
        )
        for item in packed:
            if isinstance(item, PackedRequest):
                yield item.body

    def render_attribute_updates(self, targets: Sequence[AttributeUpdateTarget]) -> Iterator[bytes]:
        for request in self._identify_requests(targets):
            form = {
                "api_key": self._redacted_key(),
                "identification": json.loads(request.identification),
            }
            yield json.dumps(form, separators=(",", ":")).encode()

    def _identify_requests(self, targets: Sequence[AttributeUpdateTarget]) -> list[IdentifyRequest]:
        identified = build_identifications(targets, self.integration)
        return [
            IdentifyRequest(
                users=tuple(
                    user for user, _ in identified[start : start + IDENTIFICATIONS_PER_REQUEST]
                ),
                identification=encode(
                    [item for _, item in identified[start : start + IDENTIFICATIONS_PER_REQUEST]]
                ).decode(),
            )
            for start in range(0, len(identified), IDENTIFICATIONS_PER_REQUEST)
        ]

    def handle_identify(self, request: IdentifyRequest, response: HttpResponse) -> Handling:
        """The Identify API answers `success` in plain text, its errors as JSON."""
        if response.status == 200 and is_identify_answer(response):
            self.pacer.accepted()
            return Handling(accepted=True)
        if is_key_refused(response):
            return Handling(stop=credentials_refused("Amplitude", response, "API key"))
        if response.status == 429:
            body = parse_json(response.body)
            body = body if isinstance(body, dict) else {}
            by_user = throttled_by_id(body, request.users)
            if body.get("eps_threshold") and project_wide(body, by_user):
                # Identifications count against the project's rate as events do.
                self.pacer.throttled(int(body["eps_threshold"]), len(request.users))
                reason = response_summary(response, limit=200)
                return Handling(retries=[Retry(request, reason, delay=0, counts_as_attempt=False)])
        if is_retried(response.status):
            return Handling(retries=[Retry(request, response_summary(response))])
        if response.status in (400, 413) and is_json_object(response):
            # Refused identifications (or too many at once): Amplitude's verdict, and the
            # user's next event carries the attributes anyway.
            return Handling()
        return Handling(stop=wrong_destination("Amplitude", response, "endpoint"))

    def send_attribute_updates(
        self,
        targets: Sequence[AttributeUpdateTarget],
        *,
        sink: DeliverySink,
        attributes: dict[str, UserAttributes],
    ) -> None:
        requests = self._identify_requests(targets)
        url = self.integration.identify_url

        def send(request: IdentifyRequest) -> HttpResponse:
            self.pacer.wait_turn(len(request.users))
            form = {"api_key": self.integration.api_key(), "identification": request.identification}
            return self.transport.post(url, data=form)

        self._dispatcher(send, self.handle_identify, lambda request: ()).run(
            requests,
            on_outcomes=sink.outcomes,
            on_unresolved=sink.unresolved,
            on_accepted=lambda request: sink.attributes_delivered(list(request.users), attributes),
        )
