"""Why events were rejected, skipped or left pending, with counts: the same words in the run
log, the partition's metadata, the demo's summary and the command line."""

from collections.abc import Mapping

from nami_pipelines.delivery.ledger import PENDING
from nami_pipelines.destinations.outcomes import REJECTED, SKIPPED

ReasonCounts = Mapping[str, int]
STATUS_ORDER = (REJECTED, SKIPPED, PENDING)


def top_reasons(reasons: ReasonCounts, limit: int = 3) -> list[tuple[str, int]]:
    """The most frequent reasons first (ties in alphabetical order, so output is stable)."""
    return sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:limit]


def describe_reasons(by_status: Mapping[str, ReasonCounts], limit: int = 3) -> str:
    """One line: `skipped 447: no external id (447); rejected 2: ...`, or '' when none."""
    parts = []
    for status in STATUS_ORDER:
        reasons = by_status.get(status) or {}
        if reasons:
            listed = ", ".join(
                f"{reason} ({count})" for reason, count in top_reasons(reasons, limit)
            )
            parts.append(f"{status} {sum(reasons.values())}: {listed}")
    return "; ".join(parts)


def reasons_markdown(by_status: Mapping[str, ReasonCounts]) -> str:
    """A table of every reason, by status then frequency, for the UI."""
    rows = [
        f"| {status} | {reason.replace('|', '/')} | {count} |"
        for status in STATUS_ORDER
        for reason, count in top_reasons(by_status.get(status) or {}, limit=1_000)
    ]
    if not rows:
        return "No event was rejected, skipped or left pending."
    return "\n".join(["| status | reason | events |", "|---|---|---:|", *rows])
