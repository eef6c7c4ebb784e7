"""Runs the receiver with uvicorn until stopped (`nami-pipelines receive`)."""

import logging
from collections.abc import Mapping
from typing import Final

import uvicorn

from nami_pipelines.events.store import EventStore
from nami_pipelines.receiver.app import build_receiver_app
from nami_pipelines.receiver.apps import WebhookApp
from nami_pipelines.receiver.committers import GroupCommitter
from nami_pipelines.receiver.signatures import NO_SIGNATURE

logger = logging.getLogger("nami_pipelines.receiver")

# Nami keeps connections between retries; a long keep-alive spares reconnects behind a proxy.
KEEP_ALIVE_SECONDS: Final = 75


def warn_unsigned(apps: Mapping[str, WebhookApp]) -> list[str]:
    """One warning per app that takes unsigned bodies (anyone who knows its URL can post)."""
    warnings = [
        f"webhook app '{app.app_id}': signature: none - bodies are not verified"
        for app in apps.values()
        if app.scheme.name == NO_SIGNATURE
    ]
    for warning in warnings:
        logger.warning(warning)
    return warnings


def serve_receiver(host: str, port: int, store: EventStore, apps: Mapping[str, WebhookApp]) -> None:
    """Serve until interrupted; uvicorn finishes in-flight requests, and the writer commits
    what is queued, before the process ends."""
    app = build_receiver_app(store, apps, GroupCommitter(store))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    uvicorn.Server(config).run()
