"""Record: claims before sending, and outcomes, releases and what profiles hold as responses
arrive, all written in bulk (one statement, or one `executemany`, per chunk or request)."""

from collections.abc import Sequence
from datetime import date

from nami_pipelines.delivery.ledger import PENDING, Claim, DeliveryLedger
from nami_pipelines.delivery.ledger_writer import LedgerWriter
from nami_pipelines.delivery.read import EVENT_ID, USER_AT, Row
from nami_pipelines.delivery.report import DeliveryReport
from nami_pipelines.destinations.client import DeliverySink
from nami_pipelines.destinations.http import Unresolved
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, OutcomeGroup
from nami_pipelines.destinations.outgoing import OutgoingEvents
from nami_pipelines.snapshots.attributes import UserAttributes


def claim_rows(
    ledger: DeliveryLedger,
    integration: str,
    selected: Sequence[Row],
    day: date,
    *,
    worker: str,
    resend: bool,
) -> Claim:
    """Lease the users of the selected rows and return the events this worker may send now
    (see `DeliveryLedger.claim`)."""
    by_user: dict[str | None, list[str]] = {}
    for row in selected:
        user = row[USER_AT]
        found = by_user.get(user)
        if found is None:
            by_user[user] = [row[EVENT_ID]]
        else:
            found.append(row[EVENT_ID])
    return ledger.claim(integration, day, by_user, worker=worker, resend=resend)


class LedgerSink(DeliverySink):
    """Records outcomes in the ledger as responses arrive and keeps the run's counts."""

    def __init__(
        self,
        ledger: DeliveryLedger,
        writer: LedgerWriter,
        integration: str,
        worker: str,
        report: DeliveryReport,
        claim: Claim | None = None,
        events: OutgoingEvents | None = None,
        carried: dict[str, int] | None = None,
    ) -> None:
        """`claim`: the events this sink records outcomes of (none, for attribute updates
        alone); `events`: the chunk's; `carried`: where each sent `user.*` event with
        attributes sits among them."""
        self.ledger = ledger
        self.writer = writer
        self.integration = integration
        self.worker = worker
        self.report = report
        self.claim = claim or Claim(date.min, {}, [])
        # The chunk's events, and where its `user.*` events with attributes sit among them.
        self.events = OutgoingEvents() if events is None else events
        self.carried = {} if carried is None else carried
        # Per user, the attributes of their latest accepted `user.*` event: what the profile holds.
        self.profiles: dict[str, UserAttributes] = {}

    def outcomes(self, groups: list[OutcomeGroup], attempts: int) -> None:
        self.writer.submit(
            self.ledger.record,
            self.integration,
            self.claim.day,
            groups,
            self.claim.events,
            worker=self.worker,
            attempts=attempts,
        )
        report, carried = self.report, self.carried
        for status, reason, event_ids in groups:
            count = len(event_ids)
            if status == ACCEPTED:
                report.accepted += count
                if carried:
                    self._accepted_profiles(event_ids)
                continue
            if status == REJECTED:
                report.rejected += count
            elif status == SKIPPED:
                report.skipped += count
            if reason:
                report.count_reason(status, reason, count)

    def _accepted_profiles(self, event_ids: Sequence[str]) -> None:
        """What the accepted `user.*` events leave on their users' profiles: per user, the
        attributes of the last one accepted."""
        carried, rows, attributes = self.carried, self.events.rows, self.events.attributes
        for event_id in event_ids:
            position = carried.get(event_id)
            if position is not None:
                self.profiles[rows[position][USER_AT]] = attributes[position]

    def unresolved(self, unresolved: Unresolved) -> None:
        self.report.unresolved += len(unresolved.event_ids)
        self.report.count_reason(PENDING, unresolved.reason, len(unresolved.event_ids))
        self.writer.submit(
            self.ledger.release,
            self.integration,
            self.claim.day,
            list(unresolved.event_ids),
            self.claim.events,
            worker=self.worker,
            reason=unresolved.reason,
            attempts=unresolved.attempts,
        )

    def attributes_delivered(
        self, users: Sequence[str], attributes: dict[str, UserAttributes]
    ) -> None:
        self.writer.submit(
            self.ledger.remember_sent_attributes,
            self.integration,
            {user: attributes[user] for user in users},
        )
        self.report.attribute_updates += len(users)

    def remember_profiles(self) -> None:
        """Queue the write of what the chunk's accepted events left on the profiles."""
        if self.profiles:
            self.writer.submit(
                self.ledger.remember_sent_attributes, self.integration, self.profiles
            )
