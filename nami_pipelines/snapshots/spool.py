"""Frames parked in a temporary file between computing a day and writing it.

A day is replaced in one transaction, but on SQLite a transaction holds the only write lock, so
it must not stay open while a large day is computed (loads and the delivery ledger would wait).
Keeping every computed row in memory instead would make the peak grow with the user count.
"""

import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pandas as pd


class FrameSpool:
    """Append frames, then read them back in the same order."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._count = 0

    def add(self, frame: pd.DataFrame) -> None:
        pickle.dump(frame, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._count += 1

    def frames(self) -> Iterator[pd.DataFrame]:
        self._file.seek(0)
        for _ in range(self._count):
            yield pickle.load(self._file)


@contextmanager
def frame_spool() -> Iterator[FrameSpool]:
    """A spool whose file is removed when the block ends."""
    with tempfile.TemporaryFile() as file:
        yield FrameSpool(file)
