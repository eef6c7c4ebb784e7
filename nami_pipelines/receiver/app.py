"""The receiver's HTTP surface: `POST /webhooks/nami/{app_id}`, `GET /healthz` (ready: the
database answers) and `GET /livez` (alive).

Order of checks, each before the next reads more: the app is known (404), the body is at most
1 MB (413, read no further), the signature matches the raw bytes (401, nothing parsed or
stored). Then the body is mapped to a row, committed, and only then acknowledged. A signed body
that cannot be used is quarantined with its reason and acknowledged too: a 4xx would only make
Nami send it again for a day.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nami_pipelines.events.model import QuarantinedLine
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.validation import (
    InvalidEvent,
    NotSentType,
    event_id_of,
    parse_nami_body,
    raw_text,
)
from nami_pipelines.receiver.apps import WebhookApp
from nami_pipelines.receiver.committers import Committer, Received, StoreUnavailable
from nami_pipelines.receiver.signatures import SIGNATURE_HEADER

logger = logging.getLogger("nami_pipelines.receiver")

MAX_BODY_BYTES: Final = 1024 * 1024
_SHOWN_APP_ID_CHARACTERS: Final = 64


class _TooLarge(Exception):
    pass


async def _body_within_limit(request: Request) -> bytes:
    """The raw body, refused as soon as it passes the limit (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(received)


def _refuse(status: int, app_id: str, reason: str) -> JSONResponse:
    logger.warning(
        "webhook refused (%d): app %r: %s", status, app_id[:_SHOWN_APP_ID_CHARACTERS], reason
    )
    return JSONResponse({"error": reason}, status_code=status)


def _received(raw: bytes, app_id: str) -> Received:
    """The row, the unsent-type event or the quarantined body that a signed body becomes."""
    try:
        return parse_nami_body(raw, app_id=app_id, now=datetime.now(UTC))
    except NotSentType as unsent:
        return unsent.event
    except InvalidEvent as reason:
        logger.warning("webhook quarantined: app %r: %s", app_id, reason)
        return QuarantinedLine(f"webhook {app_id}", 0, raw_text(raw), str(reason), event_id_of(raw))


def build_receiver_app(
    store: EventStore, apps: Mapping[str, WebhookApp], committer: Committer
) -> Starlette:
    """The ASGI app; `committer` decides how rows are committed (in groups, or one by one)."""

    async def webhook(request: Request) -> JSONResponse:
        app_id = request.path_params["app_id"]
        app = apps.get(app_id)
        if app is None:
            return _refuse(404, app_id, "unknown app")
        try:
            raw = await _body_within_limit(request)
        except _TooLarge:
            return _refuse(413, app_id, f"body over {MAX_BODY_BYTES} bytes")
        refusal = app.refusal(raw, request.headers.get(SIGNATURE_HEADER))
        if refusal is not None:
            return _refuse(401, app_id, refusal)
        try:
            fate = await committer.commit(_received(raw, app_id))
        except StoreUnavailable as error:
            logger.error(
                "webhook not stored (503): app %r: database unavailable (%s)", app_id, error
            )
            return JSONResponse({"error": "database unavailable, retry later"}, status_code=503)
        return JSONResponse({"status": fate})

    async def healthz(_request: Request) -> JSONResponse:
        def ping() -> None:
            with store.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        try:
            await asyncio.to_thread(ping)
        except Exception as error:
            return JSONResponse(
                {"status": "database unavailable", "error": type(error).__name__}, 503
            )
        return JSONResponse({"status": "ok", "apps": len(apps)})

    async def livez(_request: Request) -> JSONResponse:
        """The process answers: what a liveness probe asks. A database that is away is the
        readiness probe's (`/healthz`) business; restarting the receiver would not bring it back."""
        return JSONResponse({"status": "alive"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await committer.start()
        try:
            yield
        finally:
            await committer.stop()

    return Starlette(
        routes=[
            Route("/webhooks/nami/{app_id}", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/livez", livez, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
