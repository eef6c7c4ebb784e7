"""What both end-to-end latency rows share: nearest-rank percentiles and the row with its p50,
p95 and the p95 target."""

import math
from typing import Any, Final

from benchmarks.report import Row

SECTION: Final = "5 latency"
TARGET_P95_SECONDS: Final = 60.0


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of values at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_row(
    case: str,
    seconds: list[float],
    *,
    events: int,
    exactly_once: bool,
    note: str = "",
    details: dict[str, Any],
) -> Row:
    """p50 and p95 of `seconds` against the p95 target; `note` adds to the result column."""
    p50, p95 = percentile(seconds, 0.5), percentile(seconds, 0.95)
    return Row(
        section=SECTION,
        case=case,
        events=events,
        seconds=p95,
        exactly_once=exactly_once,
        result=f"p50 {p50:.1f}s, p95 {p95:.1f}s (min {min(seconds):.1f}s{note})",
        target=f"p95 < {TARGET_P95_SECONDS:.0f}s",
        met=p95 < TARGET_P95_SECONDS,
        details={"p50": p50, "p95": p95, **details},
    )
