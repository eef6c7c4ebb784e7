"""Streams an NDJSON file of Nami events into the store: good rows in, bad rows to quarantine."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from nami_pipelines.events.model import NamiEvent, QuarantinedLine
from nami_pipelines.events.store import EventStore
from nami_pipelines.events.validation import InvalidEvent, parse_event_line, raw_text

LOAD_CHUNK_LINES = 5_000


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """The counts a user checks after a load; they add up to the number of non-blank lines."""

    loaded: int
    duplicates: int
    quarantined: int

    def describe(self) -> str:
        return f"loaded {self.loaded}, duplicates {self.duplicates}, quarantined {self.quarantined}"


class _ChunkLoader:
    """Collects validated events and rejects, and flushes them to the store a chunk at a time."""

    def __init__(self, store: EventStore, source: str) -> None:
        self.store = store
        self.source = source
        self.events: list[NamiEvent] = []
        self.line_numbers: list[int] = []
        self.rejects: list[QuarantinedLine] = []
        self.loaded = self.duplicates = self.quarantined = 0

    def add(self, raw: bytes, line_number: int, now: datetime) -> None:
        try:
            self.events.append(parse_event_line(raw, now=now))
            self.line_numbers.append(line_number)
        except InvalidEvent as reason:
            self.rejects.append(
                QuarantinedLine(self.source, line_number, raw_text(raw), str(reason))
            )
        if len(self.events) + len(self.rejects) >= LOAD_CHUNK_LINES:
            self.flush()

    def flush(self) -> None:
        outcome = self.store.insert_events(
            self.events, source=self.source, line_numbers=self.line_numbers
        )
        rejects = self.rejects + outcome.conflicts
        self.store.quarantine(rejects)
        self.loaded += outcome.loaded
        self.duplicates += outcome.duplicates
        self.quarantined += len(rejects)
        self.events, self.line_numbers, self.rejects = [], [], []


def load_ndjson_stream(
    stream: BinaryIO,
    store: EventStore,
    *,
    source: str,
    on_bytes: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load a binary NDJSON stream chunk by chunk; memory stays flat whatever the file size."""
    chunk_loader = _ChunkLoader(store, source)
    now = datetime.now(UTC)
    for line_number, raw in enumerate(stream, start=1):
        if on_bytes is not None:
            on_bytes(len(raw))
        if raw.strip():
            chunk_loader.add(raw, line_number, now)
    chunk_loader.flush()
    return LoadSummary(chunk_loader.loaded, chunk_loader.duplicates, chunk_loader.quarantined)


def load_ndjson_file(
    path: Path, store: EventStore, *, on_bytes: Callable[[int], None] | None = None
) -> LoadSummary:
    """Load a file of Nami events (SPEC §1); loading the same file twice adds nothing."""
    with path.open("rb") as stream:
        return load_ndjson_stream(stream, store, source=str(path), on_bytes=on_bytes)
