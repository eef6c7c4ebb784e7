"""`/_emulator/*`: what tests and benchmarks use to look inside and steer the emulator.

Nothing here ever returns a secret: stats and records are keyed by the mParticle S2S key or
the Amplitude api_key, and the config view lists the mParticle keys without their secrets.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nami_pipelines.emulators.fault_plan import FaultPlan
from nami_pipelines.emulators.replies import json_reply
from nami_pipelines.emulators.state import EmulatorState

PREFIX = "/_emulator"

Handler = Callable[[Request], Awaitable[Response]]


def _json(payload: Any, status: int = 200) -> Response:
    reply = json_reply(status, payload)
    return Response(reply.body, status_code=status, media_type=reply.content_type)


def _guarded(handler: Handler) -> Handler:
    """Turns a bad parameter or body into a 400 that says what is wrong."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except (ValueError, TypeError) as error:
            return _json({"error": str(error)}, 400)

    return guarded


async def _body(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError as error:
        raise ValueError(f"body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    return payload


def _int_parameter(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValueError(f"{name} must be a non-negative integer")
    return int(raw)


def control_routes(state: EmulatorState) -> list[Route]:
    async def health(request: Request) -> Response:
        return _json({"status": "ok"})

    async def stats(request: Request) -> Response:
        return _json(
            {
                "mparticle": state.mparticle.recorder.stats(),
                "amplitude": state.amplitude.recorder.stats(),
            }
        )

    async def received(request: Request) -> Response:
        """`?api=mparticle|amplitude&kind=...&offset=&limit=`: recorded payloads in arrival
        order (kinds: events, attribute_updates or identifications, rejected)."""
        recorder = state.emulated(request.query_params.get("api", "")).recorder
        kind = request.query_params.get("kind", "events")
        offset = _int_parameter(request, "offset") or 0
        items = recorder.records(kind, offset, _int_parameter(request, "limit"))
        return _json({"api": recorder.api, "kind": kind, "offset": offset, "items": items})

    async def profiles(request: Request) -> Response:
        recorder = state.emulated(request.query_params.get("api", "")).recorder
        return _json({"api": recorder.api, "items": recorder.profiles()})

    async def reset(request: Request) -> Response:
        state.reset()
        return _json({"status": "reset"})

    async def config(request: Request) -> Response:
        """GET shows the settings without secrets; POST changes the keys it names."""
        if request.method == "POST":
            state.apply(state.settings.updated(await _body(request)))
        return _json(state.settings.public_view())

    async def faults(request: Request) -> Response:
        """GET shows the plan and what each rule has left; POST replaces the plan."""
        if request.method == "POST":
            state.faults.install(FaultPlan.from_json(await _body(request)))
        return _json(state.faults.view())

    return [
        Route(f"{PREFIX}/health", _guarded(health), methods=["GET"]),
        Route(f"{PREFIX}/stats", _guarded(stats), methods=["GET"]),
        Route(f"{PREFIX}/received", _guarded(received), methods=["GET"]),
        Route(f"{PREFIX}/profiles", _guarded(profiles), methods=["GET"]),
        Route(f"{PREFIX}/reset", _guarded(reset), methods=["POST"]),
        Route(f"{PREFIX}/config", _guarded(config), methods=["GET", "POST"]),
        Route(f"{PREFIX}/faults", _guarded(faults), methods=["GET", "POST"]),
    ]
