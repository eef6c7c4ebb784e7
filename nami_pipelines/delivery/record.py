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
from nami_pipelines.destinations.outcomes import (
    ACCEPTED,
    REJECTED,
    SKIPPED,
    Outcome,
    OutcomeGroup,
)
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
        carried: dict[str, tuple[str, UserAttributes]] | None = None,
    ) -> None:
        """`claim`: the events this sink records outcomes of (none, for attribute updates
        alone); `carried`: per sent `user.*` event, its user and attributes."""
        self.ledger = ledger
        self.writer = writer
        self.integration = integration
        self.worker = worker
        self.report = report
        self.claim = claim or Claim(date.min, {}, [])
        self.carried = carried or {}
        # Per user, the attributes of their latest accepted `user.*` event: what the profile holds.
        self.profiles: dict[str, UserAttributes] = {}

    def outcomes(self, outcomes: list[Outcome], attempts: int) -> None:
        grouped: dict[tuple[str, str | None], list[str]] = {}
        for event_id, status, reason in outcomes:
            grouped.setdefault((status, reason), []).append(event_id)
        groups = [OutcomeGroup(status, reason, ids) for (status, reason), ids in grouped.items()]
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
        for outcome in outcomes:
            status = outcome.status
            if status == ACCEPTED:
                report.accepted += 1
                found = carried.get(outcome.event_id)
                if found is not None:
                    self.profiles[found[0]] = found[1]
                continue
            if status == REJECTED:
                report.rejected += 1
            elif status == SKIPPED:
                report.skipped += 1
            if outcome.reason:
                report.count_reason(status, outcome.reason)

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
