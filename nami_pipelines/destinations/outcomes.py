"""What became of an event at a destination; the words the ledger stores."""

from dataclasses import dataclass

ACCEPTED = "accepted"
REJECTED = "rejected"
SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Outcome:
    """Final for one event: accepted, rejected (with the API's reason) or skipped (with ours)."""

    event_id: str
    status: str
    reason: str | None = None


class CredentialsRejected(RuntimeError):
    """The API refused the integration's credentials: stop it, mark nothing sent.

    The message names the integration and the HTTP status, never the credential itself.
    """
