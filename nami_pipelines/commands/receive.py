"""`receive`: the Nami webhook receiver, until stopped."""

import argparse
import logging

from sqlalchemy.exc import SQLAlchemyError

from nami_pipelines.commands.common import CommandError, open_store
from nami_pipelines.config import integrations_file_path
from nami_pipelines.receiver.apps import WebhookConfigError, load_webhook_apps
from nami_pipelines.receiver.server import serve_receiver, warn_unsigned


def command_receive(arguments: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        apps = load_webhook_apps(integrations_file_path())
    except WebhookConfigError as error:
        raise CommandError(str(error)) from None
    warn_unsigned(apps)
    print(
        f"receiving webhooks for {len(apps)} app(s) on "
        f"http://{arguments.host}:{arguments.port}/webhooks/nami/<app_id>",
        flush=True,
    )
    try:
        store = open_store()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or type(error).__name__).splitlines()[0]
        raise CommandError(f"the event database is unavailable: {reason}") from None
    serve_receiver(arguments.host, arguments.port, store, apps)
