"""Sends to one mParticle input feed: maps, packs bulk requests, and says what each response
means (docs/mparticle.md). Retrying, concurrency and giving up are the dispatcher's job."""

from collections.abc import Iterable, Iterator, Sequence

from nami_pipelines.config import MParticleIntegration
from nami_pipelines.destinations.answers import (
    credentials_refused,
    is_json_object,
    is_retried,
    looks_like_html,
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
    response_summary,
)
from nami_pipelines.destinations.mparticle_mapping import (
    MParticleBatch,
    build_mparticle_attribute_batches,
    build_mparticle_batches,
)
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, OutcomeGroup
from nami_pipelines.destinations.outgoing import AttributeUpdateTarget, OutgoingEvents, Skipped
from nami_pipelines.destinations.packing import (
    PackedRequest,
    pack_mparticle_bulk,
    split_mparticle_request,
)
from nami_pipelines.destinations.transport import HttpResponse, HttpTransport
from nami_pipelines.snapshots.attributes import UserAttributes

BulkRequest = PackedRequest[MParticleBatch]
JSON_HEADERS = {"Content-Type": "application/json"}


def is_mparticle_answer(response: HttpResponse) -> bool:
    """mParticle accepts with an empty body (or JSON); a page in its place is someone else's."""
    return not response.body.strip() or is_json_object(response)


def skipped_outcomes(skipped: Iterable[Skipped]) -> list[OutcomeGroup]:
    """Our own reasons for not sending, as ledger outcomes grouped by reason (attribute-only
    items have no event)."""
    by_reason: dict[str, list[str]] = {}
    for item in skipped:
        if item.event_id:
            by_reason.setdefault(item.reason, []).append(item.event_id)
    return [OutcomeGroup(SKIPPED, reason, tuple(ids)) for reason, ids in by_reason.items()]


def routed(packed: Iterable[BulkRequest | Skipped], sink: DeliverySink) -> Iterator[BulkRequest]:
    """Requests to send; items too large to send at all go to the sink as skipped."""
    for item in packed:
        if isinstance(item, Skipped):
            sink.outcomes(skipped_outcomes([item]), 0)
        else:
            yield item


class MParticleClient:
    """One feed's sender: `POST /v2/bulkevents` (or `/historical` for old days)."""

    def __init__(
        self,
        integration: MParticleIntegration,
        *,
        policy: RetryPolicy | None = None,
        seed: int | None = None,
    ) -> None:
        self.integration = integration
        tuning = integration.delivery
        self.policy = policy or RetryPolicy(max_attempts=tuning.max_attempts)
        self.transport = HttpTransport(
            timeout=tuning.timeout_seconds, pool_size=tuning.max_in_flight
        )
        self.stats = DispatchStats()
        self.seed = seed

    def _dispatcher(self, url: str) -> Dispatcher[BulkRequest]:
        def send(request: BulkRequest) -> HttpResponse:
            return self.transport.post(
                url,
                data=request.body,
                headers=JSON_HEADERS,
                auth=self.integration.basic_auth(),
            )

        return Dispatcher(
            stats=self.stats,
            send=send,
            handle=self.handle,
            event_ids=lambda request: request.event_ids,
            integration=self.integration.name,
            max_in_flight=self.integration.delivery.max_in_flight,
            policy=self.policy,
            seed=self.seed,
        )

    def handle(self, request: BulkRequest, response: HttpResponse) -> Handling[BulkRequest]:
        """The meaning of one response for the events of one bulk request (docs/mparticle.md).

        Only mParticle's 400 with a body is a verdict on the events; a status mParticle does
        not send for an event request, or a 2xx that is not its (empty or JSON) answer, stops
        the integration and decides nothing.
        """
        status = response.status
        if status in (200, 202):
            if not is_mparticle_answer(response):
                return Handling(stop=wrong_destination("mParticle", response, "pod or base_url"))
            return Handling(
                outcomes=[OutcomeGroup(ACCEPTED, None, request.event_ids)], accepted=True
            )
        if status in (401, 403):
            return Handling(stop=credentials_refused("mParticle", response, "S2S key and secret"))
        if status == 413:
            if request.batch_count == 1:
                # Packing keeps every batch under the documented limits: a 413 on one is the
                # API's hiccup, retried (bounded), never a reason to drop the events.
                return Handling(retries=[Retry(request, response_summary(response))])
            halves = split_mparticle_request(request)
            return Handling(
                retries=[
                    Retry(half, "HTTP 413: split", delay=0, counts_as_attempt=False)
                    for half in halves
                ]
            )
        if status == 429:
            retry_after = response.retry_after()
            delay = None if retry_after is None else self.policy.honour(retry_after)
            return Handling(retries=[Retry(request, response_summary(response), delay=delay)])
        if is_retried(status):
            return Handling(retries=[Retry(request, response_summary(response))])
        if status == 400 and response.body.strip() and not looks_like_html(response):
            reason = response_summary(response)
            return Handling(outcomes=[OutcomeGroup(REJECTED, reason, request.event_ids)])
        return Handling(stop=wrong_destination("mParticle", response, "pod or base_url"))

    def check_credentials(self) -> CredentialCheck:
        """An empty bulk request: no event is sent, and mParticle authenticates it first
        (401 without credentials, 403 with refused ones)."""
        transport = check_transport(self.integration.delivery.timeout_seconds)
        response = transport.post(
            self.integration.bulk_url,
            data=b"[]",
            headers=JSON_HEADERS,
            auth=self.integration.basic_auth(),
        )
        if response.status in (401, 403):
            return checked("refused", response, "mParticle refused the S2S key and secret")
        if response.status in (200, 202) and is_mparticle_answer(response):
            return checked("accepted", response, "the S2S key and secret are accepted")
        if response.status == 400 and is_json_object(response):
            return checked("accepted", response, "authenticated; the empty request was refused")
        return undecided(response, "mParticle", "pod or base_url")

    def send_events(self, events: OutgoingEvents, *, historical: bool, sink: DeliverySink) -> None:
        batches, skipped = build_mparticle_batches(events, self.integration)
        sink.outcomes(skipped_outcomes(skipped), 0)
        integration = self.integration
        url = integration.historical_url if historical else integration.bulk_url
        self._dispatcher(url).run(
            routed(pack_mparticle_bulk(batches), sink),
            on_outcomes=sink.outcomes,
            on_unresolved=sink.unresolved,
        )

    def render_events(self, events: OutgoingEvents) -> Iterator[bytes]:
        """The request bodies `send_events` would send, without sending (for previews)."""
        batches, _ = build_mparticle_batches(events, self.integration)
        for item in pack_mparticle_bulk(batches):
            if not isinstance(item, Skipped):
                yield item.body

    def render_attribute_updates(self, targets: Sequence[AttributeUpdateTarget]) -> Iterator[bytes]:
        batches = build_mparticle_attribute_batches(targets, self.integration)
        for item in pack_mparticle_bulk(batches):
            if not isinstance(item, Skipped):
                yield item.body

    def send_attribute_updates(
        self,
        targets: Sequence[AttributeUpdateTarget],
        *,
        sink: DeliverySink,
        attributes: dict[str, UserAttributes],
    ) -> None:
        """Attribute-only batches (never historical: that endpoint drops batches without events)."""
        batches = build_mparticle_attribute_batches(targets, self.integration)

        def delivered(request: BulkRequest) -> None:
            users = [batch.nami_user_id for batch in request.items if batch.nami_user_id]
            sink.attributes_delivered(users, attributes)

        self._dispatcher(self.integration.bulk_url).run(
            routed(pack_mparticle_bulk(batches), sink),
            on_outcomes=sink.outcomes,
            on_unresolved=sink.unresolved,
            on_accepted=delivered,
        )
