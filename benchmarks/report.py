"""One row per measurement, one aligned table for all of them, and the same rows as JSON and CSV.

Every case, whatever it measures, reports through `Row`: the table stays one table that a person
can read top to bottom (and the README can quote), while `details` keeps everything else a case
knows for whoever opens the JSON.
"""

import csv
import json
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

COLUMNS: tuple[tuple[str, str], ...] = (
    ("section", "section"),
    ("case", "case"),
    ("events", "events"),
    ("seconds", "s"),
    ("events_per_second", "events/s"),
    ("client_cpu", "client CPU"),
    ("emulator_cpu", "emu CPU"),
    ("peak_rss_mb", "peak RSS MB"),
    ("exactly_once", "exactly once"),
    ("result", "result"),
    ("target", "target"),
    ("met", "met"),
)


@dataclass(slots=True)
class Row:
    """One measurement. CPU columns are cores used on average (CPU seconds / wall seconds), so
    1.00 means one core busy the whole time: on 2 cores a process near 1.0 is bound by the GIL,
    and an emulator well under 1.0 was not the limit."""

    section: str
    case: str
    events: int | None = None
    seconds: float | None = None
    events_per_second: float | None = None
    client_cpu: float | None = None
    emulator_cpu: float | None = None
    peak_rss_mb: float | None = None
    exactly_once: bool | None = None
    result: str = ""
    target: str = ""
    met: bool | None = None
    skipped: str | None = None
    # The case broke (a child failed, a load never arrived): the benchmark did not work.
    error: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def skipped_row(section: str, case: str, reason: str, *, error: bool = False) -> Row:
    """A case that did not run, and why: not possible here (a missing SDK) or, with `error`,
    broken (which makes the command fail)."""
    prefix = "failed" if error else "skipped"
    return Row(
        section=section, case=case, result=f"{prefix}: {reason}", skipped=reason, error=error
    )


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if name == "events":
        return f"{value:,}"
    if name == "events_per_second":
        return f"{value:,.0f}"
    if name in ("client_cpu", "emulator_cpu"):
        return f"{value:.2f}"
    if name == "seconds":
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if name == "peak_rss_mb":
        return f"{value:,.0f}"
    return str(value)


def render_table(rows: Sequence[Row]) -> str:
    """The rows as one aligned plain-text table (numbers right-aligned)."""
    header = [title for _, title in COLUMNS]
    body = [[_cell(name, getattr(row, name)) for name, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(COLUMNS))]
    numeric = {"events", "seconds", "events_per_second", "client_cpu", "emulator_cpu"}
    numeric |= {"peak_rss_mb"}

    def line(cells: list[str]) -> str:
        parts = []
        for (name, _), cell, width in zip(COLUMNS, cells, widths, strict=True):
            parts.append(cell.rjust(width) if name in numeric else cell.ljust(width))
        return " | ".join(parts).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def render_markdown(rows: Sequence[Row]) -> str:
    """The same table as Markdown, for the README's Performance section."""
    header = [title for _, title in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [_cell(name, getattr(row, name)).replace("|", "\\|") for name, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """What the numbers were measured on, stored with them."""
    import os

    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def contention_note(rows: Sequence[Row]) -> str | None:
    """A warning when other work may have competed for the CPUs while cases ran: the one-minute
    load average, seen at the start and end of each timed block, more than one above the number
    of cores (a case itself accounts for up to about two: the sender and the emulator)."""
    import os

    cores = os.cpu_count() or 1
    busy = []
    for row in rows:
        loads = [row.details.get(key) for key in ("load_before", "load_after")]
        peak = max((load for load in loads if load is not None), default=None)
        if peak is not None and peak > cores + 1.0:
            busy.append((row.case, peak))
    if not busy:
        return None
    worst = max(load for _, load in busy)
    return (
        f"note: other work may have competed for the CPUs during {len(busy)} case(s) "
        f"(one-minute load up to {worst:.1f} on {cores} cores); their rates may be lower than "
        f"on an idle machine: {', '.join(case for case, _ in busy)}"
    )


def write_results(
    rows: Sequence[Row],
    folder: Path,
    arguments: dict[str, Any],
    total_seconds: float,
    sections: dict[str, float] | None = None,
) -> dict[str, Path]:
    """`latest.json` (rows with details, arguments, environment), `latest.csv` (the table's
    columns) and `latest.md` (the Markdown table) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "latest.json",
        "csv": folder / "latest.csv",
        "markdown": folder / "latest.md",
    }
    document = {
        "environment": environment(),
        "arguments": arguments,
        "total_seconds": round(total_seconds, 1),
        "section_seconds": {name: round(value, 1) for name, value in (sections or {}).items()},
        "rows": [asdict(row) for row in rows],
    }
    paths["json"].write_text(json.dumps(document, indent=2, default=str) + "\n")
    with paths["csv"].open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([name for name, _ in COLUMNS] + ["skipped"])
        for row in rows:
            writer.writerow(
                ["" if getattr(row, n) is None else getattr(row, n) for n, _ in COLUMNS]
                + [row.skipped or ""]
            )
    paths["markdown"].write_text(render_markdown(rows) + "\n")
    return paths
