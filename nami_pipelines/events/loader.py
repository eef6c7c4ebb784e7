"""Streams an NDJSON file of Nami events into the store: good rows in, bad rows to quarantine.

Lines are the project's envelope or, with an app id, Nami's own webhook bodies; the format is
told apart per line, so one file may hold both.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from nami_pipelines.events.model import NamiEvent, QuarantinedLine, UnsentEvent
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.validation import (
    InvalidEvent,
    NotSentType,
    event_id_of,
    parse_event_line,
    raw_text,
)
from nami_pipelines.events.writes import WriteBatch

LOAD_CHUNK_LINES = 5_000


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """The counts a user checks after a load; they add up to the number of non-blank lines."""

    loaded: int
    duplicates: int
    quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    unsent_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> int:
        """Lines that were events: stored now, stored before, or of a type we do not send."""
        return self.loaded + self.duplicates + sum(self.unsent_by_type.values())

    def describe(self) -> str:
        text = f"loaded {self.loaded}, duplicates {self.duplicates}, quarantined {self.quarantined}"
        if self.unsent_by_type:
            unsent = ", ".join(f"{kind} {n}" for kind, n in sorted(self.unsent_by_type.items()))
            text += f", not sent (acknowledged): {unsent}"
        return text

    def reason_lines(self) -> list[str]:
        """One line per quarantine reason, most frequent first."""
        ranked = sorted(self.quarantined_by_reason.items(), key=lambda item: (-item[1], item[0]))
        return [f"  quarantined {count}: {reason}" for reason, count in ranked]


class _ChunkLoader:
    """Collects validated events and rejects, and flushes them to the store a chunk at a time,
    each chunk in one transaction."""

    def __init__(self, store: EventStore, source: str, app_id: str | None) -> None:
        self.store = store
        self.source = source
        self.app_id = app_id
        self.events: list[NamiEvent] = []
        self.line_numbers: list[int] = []
        self.unsent: list[UnsentEvent] = []
        self.rejects: list[QuarantinedLine] = []
        self.loaded = self.duplicates = 0
        self.reasons: Counter[str] = Counter()
        self.unsent_types: Counter[str] = Counter()

    def add(self, raw: bytes, line_number: int, now: datetime) -> None:
        try:
            self.events.append(parse_event_line(raw, now=now, app_id=self.app_id))
            self.line_numbers.append(line_number)
        except NotSentType as unsent:
            self.unsent.append(unsent.event)
            self.unsent_types[unsent.event.event_type] += 1
        except InvalidEvent as reason:
            self.rejects.append(
                QuarantinedLine(
                    self.source, line_number, raw_text(raw), str(reason), event_id_of(raw)
                )
            )
        if len(self.events) + len(self.rejects) + len(self.unsent) >= LOAD_CHUNK_LINES:
            self.flush()

    def flush(self) -> None:
        batch = WriteBatch(
            events=self.events,
            sources=[self.source] * len(self.events),
            line_numbers=self.line_numbers,
            unsent=self.unsent,
            quarantined=self.rejects,
        )
        outcome = self.store.write(batch)
        self.loaded += outcome.loaded
        self.duplicates += outcome.duplicates
        self.reasons.update(line.reason for line in [*self.rejects, *outcome.conflicts])
        self.events, self.line_numbers, self.unsent, self.rejects = [], [], [], []

    def summary(self) -> LoadSummary:
        return LoadSummary(
            loaded=self.loaded,
            duplicates=self.duplicates,
            quarantined=sum(self.reasons.values()),
            quarantined_by_reason=dict(self.reasons),
            unsent_by_type=dict(self.unsent_types),
        )


def load_ndjson_stream(
    stream: BinaryIO,
    store: EventStore,
    *,
    source: str,
    app_id: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load a binary NDJSON stream chunk by chunk; memory stays flat whatever the file size."""
    chunk_loader = _ChunkLoader(store, source, app_id)
    now = datetime.now(UTC)
    for line_number, raw in enumerate(stream, start=1):
        if on_bytes is not None:
            on_bytes(len(raw))
        if raw.strip():
            chunk_loader.add(raw, line_number, now)
    chunk_loader.flush()
    return chunk_loader.summary()


def load_ndjson_file(
    path: Path,
    store: EventStore,
    *,
    app_id: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load a file of Nami events (docs/input.md); loading the same file twice adds nothing.

    With `app_id`, lines that are Nami's own webhook bodies are taken as that app's events."""
    with path.open("rb") as stream:
        return load_ndjson_stream(
            stream, store, source=str(path.resolve()), app_id=app_id, on_bytes=on_bytes
        )
