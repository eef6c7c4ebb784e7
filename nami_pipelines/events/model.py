"""Typed values that flow through the event source: a validated event and a quarantined line."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

# The column that names a user in `nami_events`, in snapshots, in the ledger and in every frame
# built from them.
USER: Final = "nami_user_id"


# Not frozen: delivery builds one per event sent, and a frozen dataclass costs eight times as
# much to build (each field set through `object.__setattr__`). Nothing changes an event.
@dataclass(slots=True)
class NamiEvent:
    """One validated Nami event, as stored in `nami_events` (without its `loaded_seq`)."""

    event_id: str
    event_type: str
    occurred_at: datetime
    app_id: str
    app_platform_id: str | None
    platform_type: str | None
    nami_user_id: str | None
    external_id: str | None
    device_id: str | None
    environment: str
    payload: dict[str, Any]
    payload_json: str

    def row(self) -> dict[str, Any]:
        """The columns as they are written (payload as its canonical JSON text)."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "app_id": self.app_id,
            "app_platform_id": self.app_platform_id,
            "platform_type": self.platform_type,
            "nami_user_id": self.nami_user_id,
            "external_id": self.external_id,
            "device_id": self.device_id,
            "environment": self.environment,
            "payload": self.payload_json,
        }


@dataclass(frozen=True, slots=True)
class QuarantinedLine:
    """A line that could not be used, kept verbatim with the reason so nothing is lost silently."""

    source: str
    line_number: int
    raw_line: str
    reason: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnsentEvent:
    """An event of a type Nami emits and no destination takes (e.g. `device.session.start`):
    kept by id so that it is counted once per type however often Nami retries it."""

    event_id: str
    event_type: str
    app_id: str
