"""The API endpoints: reads the body, applies the injected faults, runs the API's rules, counts
the request and its status, and turns the reply into an HTTP response.

Handlers are `async` and do all their work between awaits, so the state needs no lock: one
event loop serves every request, and the CPU-bound rules never fight over the GIL.
"""

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from nami_pipelines.emulators import amplitude_api, mparticle_api
from nami_pipelines.emulators.faults import Decision
from nami_pipelines.emulators.recorder import Tally
from nami_pipelines.emulators.replies import Incoming, Reply
from nami_pipelines.emulators.state import EmulatedApi, EmulatorState

DROPPED_CONNECTION_LOG = "ASGI callable returned without completing response."


class DroppedConnection(Response):
    """A response that breaks off: it promises a body, sends a few bytes and stops.

    uvicorn then closes the connection, so the client gets an incomplete read or a reset,
    never a usable status, which is what a connection lost on the way back looks like. (The
    ASGI spec has no abort; returning before the body is complete is the portable way.)
    """

    def __init__(self) -> None:
        # The status line claims a 503; a client reading the body never gets to use it.
        super().__init__(status_code=503)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [(b"content-length", b"4096"), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"code":', "more_body": True})


def _response(reply: Reply) -> Response:
    return Response(
        content=reply.body,
        status_code=reply.status,
        media_type=reply.content_type,
        headers=dict(reply.headers),
    )


def _apply_fault(
    emulated: EmulatedApi, incoming: Incoming, decision: Decision, tally: Tally
) -> tuple[Reply | None, str | None]:
    """Runs the request under the decided fault: the reply (None when the connection must
    drop) and the credential the request authenticated as, if it got that far."""
    rule = decision.rule
    if rule is None or rule.kind == "partial_reject":
        if rule is not None:
            emulated.recorder.count_fault(rule.label)
        outcome = emulated.handle(incoming, decision.partial_reject, tally)
        return outcome.reply, outcome.credential
    emulated.recorder.count_fault(rule.label)
    credential = None
    if decision.processed_first:
        credential = emulated.handle(incoming, None, tally).credential
        tally["processed_before_failure"] += 1
    return (None if rule.kind == "drop" else emulated.fault_reply(rule)), credential


def _endpoint(
    state: EmulatorState, api: str, has_items: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        body = await request.body()
        emulated = state.emulated(api)
        decision = state.faults.draw(emulated.api, has_items)
        if decision.delay_seconds:
            emulated.recorder.count_fault("slow")
            await asyncio.sleep(decision.delay_seconds)
        tally = Tally(requests=1)
        incoming = Incoming(request.url.path, request.headers, body)
        reply, credential = _apply_fault(emulated, incoming, decision, tally)
        tally.response("dropped" if reply is None else reply.status)
        emulated.recorder.add(credential, tally)
        return DroppedConnection() if reply is None else _response(reply)

    return serve


def api_routes(state: EmulatorState) -> list[Route]:
    """Both APIs' endpoints on one app: mParticle under `/v2`, Amplitude at its own paths."""
    routes = [
        Route(path, _endpoint(state, "mparticle", has_items=True), methods=["POST"])
        for path in mparticle_api.PATHS
    ]
    routes += [
        Route(
            path,
            _endpoint(state, "amplitude", has_items=path != amplitude_api.IDENTIFY_PATH),
            methods=["POST"],
        )
        for path in amplitude_api.PATHS
    ]
    return routes
