"""`status`: where deliveries stand per integration, and the quarantine by reason, as text
for people or JSON for scripts. The numbers come from `delivery.status`."""

import argparse
import json
from datetime import date, timedelta

from nami_pipelines.commands.common import CommandError, open_store
from nami_pipelines.delivery.status import DeliveryStatus, delivery_status, status_as_json


def _days(days: list[date]) -> str:
    """Consecutive days as ranges: `2026-02-01..2026-02-07, 2026-02-09`."""
    if not days:
        return "none"
    spans: list[tuple[date, date]] = []
    for day in days:
        if spans and day - spans[-1][1] == timedelta(days=1):
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in spans)


def _age(age: timedelta) -> str:
    seconds = max(int(age.total_seconds()), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    return f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m"


def _reasons(pairs: list[tuple[str, int]]) -> str:
    return "; ".join(f"{reason} ({count})" for reason, count in pairs)


def status_text(status: DeliveryStatus) -> str:
    lines: list[str] = []
    for item in status.integrations:
        state = "" if item.enabled else " (disabled)"
        lines.append(f"{item.name} ({item.type}){state}")
        lines.append(f"  days delivered: {_days(item.days_delivered)}")
        if item.days_with_pending:
            lines.append(f"  days with pending events: {_days(item.days_with_pending)}")
        lines.append(
            f"  selected {item.selected}, accepted {item.accepted}, rejected {item.rejected}, "
            f"skipped {item.skipped}, pending {item.pending}"
        )
        if item.rejected_reasons:
            lines.append(f"  rejected: {_reasons(item.rejected_reasons)}")
        if item.skipped_reasons:
            lines.append(f"  skipped: {_reasons(item.skipped_reasons)}")
        if item.oldest_pending is not None:
            oldest = item.oldest_pending
            why = f", {item.pending_reason}" if item.pending_reason else ""
            lines.append(
                f"  oldest pending: {oldest.event_id} at {oldest.occurred_at.isoformat()} "
                f"({_age(oldest.age(status.at))} old{why})"
            )
    total = sum(count for _, count in status.quarantined)
    lines.append(f"quarantined rows: {total}")
    lines.extend(f"  {reason}: {count}" for reason, count in status.quarantined)
    if status.not_sent_by_type:
        lines.append("received, not sent to any destination (by type):")
        lines.extend(f"  {kind}: {count}" for kind, count in status.not_sent_by_type)
    return "\n".join(lines)


def command_status(arguments: argparse.Namespace) -> None:
    from nami_pipelines.config import IntegrationConfigError, load_integrations

    try:
        # Reading the ledger needs no credential: status works before the keys are set.
        integrations = load_integrations(check_env=False)
    except IntegrationConfigError as error:
        raise CommandError(str(error)) from None
    status = delivery_status(open_store(), integrations)
    print(json.dumps(status_as_json(status), indent=2) if arguments.json else status_text(status))
