"""What a delivery run did, for the run log, the asset metadata and the demo's summary."""

from dataclasses import dataclass, field, fields
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

    def copy_stats(self, client: DestinationClient, before: "RequestCounts") -> None:
        """The client's request counters since `before` (a client may send several runs)."""
        (
            self.requests,
            self.retries,
            self.throttled,
            self.server_errors,
            self.transport_errors,
        ) = (now - then for now, then in zip(request_counts(client), before, strict=True))

    def add(self, part: "DeliveryReport") -> None:
        """Fold the counts of a part of this run (a worker's span, a chunk's closing updates)."""
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.historical = self.historical or part.historical
        for status, reasons in part.reasons.items():
            for reason, count in reasons.items():
                self.count_reason(status, reason, count)


RequestCounts = tuple[int, int, int, int, int]
_SUMMED = tuple(item.name for item in fields(DeliveryReport) if item.type is int)


def request_counts(client: DestinationClient) -> RequestCounts:
    """The client's requests, retries, throttled, server errors and transport errors so far."""
    stats = client.stats
    return (
        stats.requests,
        stats.retries,
        stats.throttled,
        stats.server_errors,
        stats.transport_errors,
    )
