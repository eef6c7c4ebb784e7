"""What a destination client offers the send loop, and what it reports back while it works."""

from collections.abc import Iterator, Sequence
from typing import Protocol

from nami_pipelines.destinations.credential_check import CredentialCheck
from nami_pipelines.destinations.http import DispatchStats, Unresolved
from nami_pipelines.destinations.outcomes import OutcomeGroup
from nami_pipelines.destinations.outgoing import AttributeUpdateTarget, OutgoingEvents
from nami_pipelines.snapshots.attributes import UserAttributes


class DeliverySink(Protocol):
    """Receives results as they happen, so a crash loses at most the requests in flight."""

    def outcomes(self, groups: list[OutcomeGroup], attempts: int) -> None: ...

    def unresolved(self, unresolved: Unresolved) -> None: ...

    def attributes_delivered(
        self, users: Sequence[str], attributes: dict[str, UserAttributes]
    ) -> None: ...


class DestinationClient(Protocol):
    """One integration's sender: maps, packs to the API's limits, sends, and reports."""

    stats: DispatchStats

    def send_events(
        self, events: OutgoingEvents, *, historical: bool, sink: DeliverySink
    ) -> None: ...

    def send_attribute_updates(
        self,
        targets: Sequence[AttributeUpdateTarget],
        *,
        sink: DeliverySink,
        attributes: dict[str, UserAttributes],
    ) -> None: ...

    def check_credentials(self) -> CredentialCheck: ...

    def render_events(self, events: OutgoingEvents) -> Iterator[bytes]: ...

    def render_attribute_updates(
        self, targets: Sequence[AttributeUpdateTarget]
    ) -> Iterator[bytes]: ...
