"""`nami-pipelines check`: is the integrations file right, is every credential set, and does
each destination accept its credentials? One line per problem and per integration, no secret.

It validates the whole file at once, resolves every credential variable, and asks each enabled
destination with a request that carries no event, so running it never sends or records anything.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nami_pipelines.config import (
    AnyIntegration,
    IntegrationConfigError,
    missing_variables,
    read_integrations_document,
    validate_integrations,
)
from nami_pipelines.delivery.clients import client_for


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One printed line, and whether it is a failure."""

    text: str
    failed: bool


def _label(integration: AnyIntegration) -> str:
    return f"integration '{integration.name}' ({integration.type})"


def _check_one(integration: AnyIntegration) -> CheckLine:
    if not integration.enabled:
        return CheckLine(f"{_label(integration)}: disabled, not checked", failed=False)
    missing = missing_variables(integration)
    if missing:
        unset = ", ".join(missing)
        return CheckLine(f"{_label(integration)}: not set: environment variable {unset}", True)
    result = client_for(integration).check_credentials()
    return CheckLine(f"{_label(integration)}: {result.describe()}", failed=not result.passed)


def check_integrations(path: Path | None = None) -> Iterator[CheckLine]:
    """Every configuration problem, then one line per valid integration, as each is checked."""
    try:
        integrations, problems = validate_integrations(read_integrations_document(path))
    except IntegrationConfigError as error:
        yield from (CheckLine(f"configuration: {problem}", True) for problem in error.problems)
        return
    yield from (CheckLine(f"configuration: {problem}", True) for problem in problems)
    if not integrations and not problems:
        yield CheckLine("configuration: no integrations configured", failed=True)
    for integration in integrations:
        yield _check_one(integration)
