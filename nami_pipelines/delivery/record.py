"""Record: claims before sending, and outcomes, releases and what profiles hold as responses
arrive, all written in bulk (one statement, or one `executemany`, per chunk or request)."""

from collections.abc import Sequence
from datetime import date

from nami_pipelines.delivery.ledger import PENDING, Candidate, DeliveryLedger
from nami_pipelines.delivery.ledger_writer import LedgerWriter
from nami_pipelines.delivery.read import EVENT_ID, USER_AT, Row
from nami_pipelines.delivery.report import DeliveryReport
from nami_pipelines.destinations.client import DeliverySink
from nami_pipelines.destinations.http import Unresolved
from nami_pipelines.destinations.outcomes import ACCEPTED, REJECTED, SKIPPED, Outcome
from nami_pipelines.snapshots.attributes import UserAttributes


def claim_rows(
    ledger: DeliveryLedger,
    integration: str,
    selected: Sequence[Row],
    day: date,
    *,
    worker: str,
    resend: bool,
) -> set[str]:
    """Lease the selected rows this worker may send now (see `DeliveryLedger.claim`)."""
    candidates = [Candidate(row[EVENT_ID], row[USER_AT], day) for row in selected]
    return set(ledger.claim(integration, candidates, worker=worker, resend=resend))


class LedgerSink(DeliverySink):
    """Records outcomes in the ledger as responses arrive and keeps the run's counts."""

    def __init__(
        self,
        ledger: DeliveryLedger,
        writer: LedgerWriter,
        integration: str,
        worker: str,
        report: DeliveryReport,
        carried: dict[str, tuple[str, UserAttributes]],
    ) -> None:
        self.ledger = ledger
        self.writer = writer
        self.integration = integration
        self.worker = worker
        self.report = report
        self.carried = carried
        # Per user, the attributes of their latest accepted `user.*` event: what the profile holds.
        self.profiles: dict[str, UserAttributes] = {}

    def outcomes(self, outcomes: list[Outcome], attempts: int) -> None:
        self.writer.submit(
            self.ledger.record, self.integration, outcomes, worker=self.worker, attempts=attempts
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
            list(unresolved.event_ids),
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
