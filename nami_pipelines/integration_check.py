"""`nami-pipelines check`: is the integrations file right, is every credential set, and does
each destination accept its credentials? One line per problem and per integration, no secret.

It validates the whole file at once, resolves every credential variable, and asks each enabled
destination with a request that carries no event, so running it never sends or records anything.
"""

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nami_pipelines.config import (
    AnyIntegration,
    IntegrationConfigError,
    integrations_folder,
    missing_variables,
    read_integrations_document,
    validate_integrations,
)
from nami_pipelines.delivery.clients import client_for
from nami_pipelines.receiver.apps import SHARED_SECRET_VARIABLE, WebhookConfigError, webhook_apps


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One printed line, and whether it is a failure."""

    text: str
    failed: bool
    # A problem of the file or the environment (the user's input), not of a destination.
    bad_input: bool = False


def _configuration(problem: str) -> CheckLine:
    return CheckLine(f"configuration: {problem}", failed=True, bad_input=True)


def _label(integration: AnyIntegration) -> str:
    return f"integration '{integration.name}' ({integration.type})"


def _check_one(integration: AnyIntegration) -> CheckLine:
    if not integration.enabled:
        return CheckLine(f"{_label(integration)}: disabled, not checked", failed=False)
    missing = missing_variables(integration)
    if missing:
        unset = ", ".join(missing)
        text = f"{_label(integration)}: not set: environment variable {unset}"
        return CheckLine(text, failed=True, bad_input=True)
    result = client_for(integration).check_credentials()
    return CheckLine(f"{_label(integration)}: {result.describe()}", failed=not result.passed)


def check_integrations(path: Path | None = None) -> Iterator[CheckLine]:
    """Every configuration problem, then one line per valid integration, as each is checked."""
    try:
        document = read_integrations_document(path)
        integrations, problems = validate_integrations(document, integrations_folder(path))
    except IntegrationConfigError as error:
        yield from (_configuration(problem) for problem in error.problems)
        return
    yield from (_configuration(problem) for problem in problems)
    if not integrations and not problems:
        yield _configuration("no integrations configured")
    yield _check_webhooks(document)
    for integration in integrations:
        yield _check_one(integration)


def _check_webhooks(document: Any) -> CheckLine:
    """The apps `receive` would take webhooks for, with their secrets resolved, as it checks
    them at start. A file without a `webhooks:` list and without the shared secret takes its
    events from files only, which is no problem."""
    listed = isinstance(document, Mapping) and "webhooks" in document
    if not listed and not os.environ.get(SHARED_SECRET_VARIABLE):
        return CheckLine(
            f"webhooks: none configured (receive needs a webhooks: list or "
            f"{SHARED_SECRET_VARIABLE})",
            failed=False,
        )
    try:
        apps = webhook_apps(document if isinstance(document, Mapping) else None)
    except WebhookConfigError as error:
        return _configuration(str(error))
    described = ", ".join(f"{app.app_id} ({app.scheme.name})" for app in apps.values())
    return CheckLine(f"webhooks: ready for {described}", failed=False)
