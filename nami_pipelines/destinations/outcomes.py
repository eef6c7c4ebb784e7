"""What became of an event at a destination; the words the ledger stores; and the errors that
stop an integration without deciding anything about its events."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

ACCEPTED = "accepted"
REJECTED = "rejected"
SKIPPED = "skipped"


class OutcomeGroup(NamedTuple):
    """Final for some events: accepted, rejected (with the API's reason) or skipped (with
    ours). One per request, or per reason within one: never an object per event."""

    status: str
    reason: str | None
    event_ids: Sequence[str]


class IntegrationStopped(RuntimeError):
    """The integration cannot go on: nothing it had not sent is marked sent or rejected, so its
    events stay pending for a later run once the cause is fixed.

    The message names the integration, and the URL and HTTP status where there is one; never
    a credential.
    """


class CredentialsRejected(IntegrationStopped):
    """The API refused the integration's credentials."""


class WrongDestination(IntegrationStopped):
    """The answer did not come from the API as an answer to an event request (404, 405, a
    redirect, a proxy's or captive portal's page): the URL is wrong or something stands between.
    Only an API's verdict on an event dead-letters it, so none of these do."""


class RequestRefused(IntegrationStopped):
    """The API refused the request as a whole without naming any event in it (an Amplitude 400
    with no index lists: a malformed body or an invalid option). That is no verdict on the
    events, so none is dead-lettered; the cause is ours to fix."""


@dataclass(frozen=True, slots=True)
class Stop:
    """A response that stops the integration: why (no secret), and the error to raise."""

    reason: str
    error: type[IntegrationStopped]
