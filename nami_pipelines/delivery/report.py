"""What a delivery run did, for the run log, the asset metadata and the demo's summary."""

from dataclasses import dataclass, field
from datetime import date

from nami_pipelines.destinations.client import DestinationClient

REASON_KEY_LENGTH = 120


@dataclass(slots=True)
class DeliveryReport:
    """Counts of one (day, integration) run, or of one worker's span of it."""

    integration: str
    day: date
    selected: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    already_done: int = 0
    unresolved: int = 0
    attribute_updates: int = 0
    historical: bool = False
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    duration_seconds: float = 0.0
    # Per status (rejected, skipped, pending), how many events got each reason.
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)

    def count_reason(self, status: str, reason: str, count: int = 1) -> None:
        of_status = self.reasons.setdefault(status, {})
        key = reason[:REASON_KEY_LENGTH]
        of_status[key] = of_status.get(key, 0) + count

    @property
    def events_per_second(self) -> float:
        sent = self.accepted + self.rejected
        return sent / self.duration_seconds if self.duration_seconds > 0 else 0.0

    def copy_stats(self, client: DestinationClient) -> None:
        """The client's request counters so far (they accumulate over the run)."""
        stats = client.stats
        self.requests = stats.requests
        self.retries = stats.retries
        self.throttled = stats.throttled
        self.server_errors = stats.server_errors
        self.transport_errors = stats.transport_errors
