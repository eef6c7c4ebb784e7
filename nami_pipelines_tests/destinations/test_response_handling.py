"""What each response class means, per API (docs/mparticle.md, docs/amplitude.md): the clients'
decision tables."""

import json

from nami_pipelines.config import parse_integrations
from nami_pipelines.destinations.amplitude_client import AmplitudeClient, IdentifyRequest
from nami_pipelines.destinations.http import RetryPolicy
from nami_pipelines.destinations.mparticle_client import MParticleClient
from nami_pipelines.destinations.mparticle_mapping import MParticleBatch
from nami_pipelines.destinations.outcomes import CredentialsRejected
from nami_pipelines.destinations.packing import pack_amplitude_requests, pack_mparticle_bulk
from nami_pipelines.destinations.transport import HttpResponse
from nami_pipelines_tests.destinations.support import per_event

FEED, PROJECT = parse_integrations(
    {
        "integrations": [
            {
                "name": "feed",
                "type": "mparticle",
                "app_id": "a",
                "platform": "apple",
                "credentials": {"key_env": "K", "secret_env": "S"},
            },
            {
                "name": "project",
                "type": "amplitude",
                "app_id": "a",
                "credentials": {"api_key_env": "A"},
            },
        ]
    },
    check_env=False,
)
POLICY = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=7)


def response(status: int, body: object = "", **headers: str) -> HttpResponse:
    text = body if isinstance(body, str) else json.dumps(body)
    return HttpResponse(status, text, {k.replace("_", "-"): v for k, v in headers.items()})


def bulk(batches: int = 2):
    items = [MParticleBatch({"events": [], "n": n}, (f"e{n}",), f"u{n}") for n in range(batches)]
    return next(pack_mparticle_bulk(items))


def amplitude_request(users: list[str]):
    events = [
        {"user_id": user, "event_type": "x", "insert_id": f"e{n}"} for n, user in enumerate(users)
    ]
    return next(pack_amplitude_requests(events, "key", options=None))


def test_mparticle_decisions():
    client = MParticleClient(FEED, policy=POLICY)
    request = bulk()
    accepted = client.handle(request, response(202))
    assert accepted.accepted and [o[1] for o in per_event(accepted.outcomes)] == ["accepted"] * 2
    rejected = client.handle(request, response(400, {"errors": ["bad batch"]}))
    assert {o[1] for o in per_event(rejected.outcomes)} == {"rejected"}
    assert "bad batch" in per_event(rejected.outcomes)[0][2] and not rejected.retries
    for status in (401, 403):
        refused = client.handle(request, response(status))
        assert refused.stop.error is CredentialsRejected and not refused.outcomes
    throttled = client.handle(request, response(429, retry_after="3"))
    assert [(r.request, r.delay) for r in throttled.retries] == [(request, 3.0)]
    assert client.handle(request, response(429)).retries[0].delay is None  # policy backoff
    assert client.handle(request, response(429, retry_after="9999")).retries[0].delay == 7
    for status in (500, 502, 503, 504, 0):
        assert client.handle(request, response(status)).retries[0].request is request
    split = client.handle(request, response(413))
    assert [r.request.batch_count for r in split.retries] == [1, 1]
    alone = client.handle(bulk(1), response(413))
    assert not alone.outcomes and alone.retries[0].delay is None  # retried, bounded


def test_amplitude_decisions():
    client = AmplitudeClient(PROJECT, policy=POLICY, throttle_hold_seconds=30)
    request = amplitude_request(["alice", "bob", "carol"])
    assert client.handle(request, response(200, {"code": 200})).accepted
    refused = client.handle(request, response(400, {"code": 400, "error": "Invalid API key: x"}))
    assert refused.stop.error is CredentialsRejected
    partial = client.handle(
        request,
        response(
            400,
            {
                "code": 400,
                "error": "Request missing required field",
                "events_with_missing_fields": {"event_type": [1]},
                "events_with_invalid_fields": {"time": [2]},
            },
        ),
    )
    assert [(o[0], o[1]) for o in per_event(partial.outcomes)] == [
        ("e1", "rejected"),
        ("e2", "rejected"),
    ]
    (_, _, missing), (_, _, invalid) = per_event(partial.outcomes)
    assert "event_type" in missing and "time" in invalid
    assert [r.request.event_ids for r in partial.retries] == [("e0",)]
    assert not partial.retries[0].counts_as_attempt
    throttled = client.handle(
        request,
        response(
            429,
            {
                "code": 429,
                "eps_threshold": 30,
                "throttled_users": {"bob": 31},
                "throttled_events": [1],
            },
        ),
    )
    held, rest = throttled.retries
    assert (held.request.event_ids, held.delay) == (("e1",), 30)
    assert (rest.request.event_ids, rest.delay) == (("e0", "e2"), 0)
    for status in (500, 502, 503, 504, 0):
        assert client.handle(request, response(status)).retries[0].request is request
    assert [r.request.event_ids for r in client.handle(request, response(413)).retries] == [
        ("e0",),
        ("e1", "e2"),
    ]


def test_amplitude_heavy_user_is_resent_in_waves_of_half_the_threshold():
    client = AmplitudeClient(PROJECT, policy=POLICY, throttle_hold_seconds=30)
    request = amplitude_request(["heavy"] * 40)
    handling = client.handle(
        request,
        response(429, {"eps_threshold": 30, "throttled_events": list(range(40))}),
    )
    assert [(len(r.request.items), r.delay) for r in handling.retries] == [
        (15, 30),
        (15, 60),
        (10, 90),
    ]


def test_amplitude_project_wide_throttle_paces_under_the_stated_rate():
    client = AmplitudeClient(PROJECT, policy=POLICY, throttle_hold_seconds=30)
    request = amplitude_request([f"user{n}" for n in range(6)])
    project_wide = {
        "code": 429,
        "error": "Too many requests for this project",
        "eps_threshold": 1000,
        "throttled_events": list(range(6)),
    }
    handling = client.handle(request, response(429, project_wide))
    assert [(len(r.request.items), r.delay, r.counts_as_attempt) for r in handling.retries] == [
        (6, 0.0, False)
    ]
    assert client.pacer.rate == 950.0
    # Busy ids are still held in waves, and do not change the pace.
    busy = {**project_wide, "eps_threshold": 30, "throttled_users": {"user1": 31}}
    held = client.handle(request, response(429, {**busy, "throttled_events": [1]}))
    assert [r.delay for r in held.retries] == [30, 0]
    assert client.pacer.rate == 950.0


def test_amplitude_identify_paces_only_on_a_project_wide_429():
    client = AmplitudeClient(PROJECT, policy=POLICY)
    request = IdentifyRequest(users=("ann", "bob", "cid"), identification="[]")
    # A bare 429 (a gateway's, or an injected fault) names no events: back off, pace unchanged.
    bare = client.handle_identify(request, response(429, {"code": 429, "eps_threshold": 30}))
    assert [r.delay for r in bare.retries] == [None] and client.pacer.rate is None
    project_wide = {"code": 429, "eps_threshold": 1000, "throttled_events": [0, 1, 2]}
    paced = client.handle_identify(request, response(429, project_wide))
    assert [(r.delay, r.counts_as_attempt) for r in paced.retries] == [(0, False)]
    assert client.pacer.rate == 950.0
