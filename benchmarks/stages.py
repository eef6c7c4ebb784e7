"""CPU time per stage of our sender (read, state, mapping, encoding, ledger, HTTP), measured in
the sender's own process by timing the functions each stage runs.

Each timed call adds the CPU time of the thread that runs it (`time.thread_time`), less the time
of timed calls made inside it, to its stage: so a stage's number is its own work whichever
thread does it (the ledger writer's thread, the HTTP sender threads) and nothing is counted
twice. Whatever no timed function covers (the send loop's bookkeeping, the ledger sink, thread
hand-offs, garbage collection) is the "other" row. The wrappers cost about a microsecond per
call, so every timed function is one called per chunk or per request, never per event: the
encoding of a request's events is timed as the packing step that fills that request.
"""

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

STAGES = ("read", "state", "mapping", "encoding", "ledger", "HTTP")


class StageTimer:
    """Exclusive CPU seconds per stage, summed over every thread."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()
        self._local = threading.local()

    def _enter(self) -> float:
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(0.0)  # time of timed calls inside this one
        return time.thread_time()

    def _leave(self, stage: str, started: float) -> None:
        elapsed = time.thread_time() - started
        stack = self._local.stack
        inner = stack.pop()
        if stack:
            stack[-1] += elapsed
        with self._lock:
            self.seconds[stage] += elapsed - inner

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` timed as `stage` (each step of a generator function, for a generator)."""
        if inspect.isgeneratorfunction(function):

            @functools.wraps(function)
            def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return _TimedSteps(self, stage, function(*args, **kwargs))

            return generator

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = self._enter()
            try:
                return function(*args, **kwargs)
            finally:
                self._leave(stage, started)

        return timed


class _TimedSteps:
    """A generator's steps timed one by one; an iterator object rather than a generator, so it
    keeps no reference to the item last produced (the delivery frees each chunk before its
    collector pass, and a wrapper holding it would make that pass look at every row)."""

    def __init__(self, timer: StageTimer, stage: str, produced: Iterator[Any]) -> None:
        self._timer, self._stage, self._produced = timer, stage, produced

    def __iter__(self) -> "_TimedSteps":
        return self

    def __next__(self) -> Any:
        started = self._timer._enter()
        try:
            return next(self._produced)
        finally:
            self._timer._leave(self._stage, started)


# (stage, module, attribute): where each stage's functions are looked up at call time.
_TIMED = (
    ("read", "nami_pipelines.delivery.run", "day_chunks"),
    ("state", "nami_pipelines.delivery.run", "prepare_chunk"),
    ("state", "nami_pipelines.delivery.profiles", "_closing_values"),
    ("mapping", "nami_pipelines.destinations.amplitude_client", "build_amplitude_events"),
    ("mapping", "nami_pipelines.destinations.amplitude_client", "build_identifications"),
    ("mapping", "nami_pipelines.destinations.mparticle_client", "build_mparticle_batches"),
    (
        "mapping",
        "nami_pipelines.destinations.mparticle_client",
        "build_mparticle_attribute_batches",
    ),
    # A generator: each step encodes and packs one request's events or batches.
    ("encoding", "nami_pipelines.destinations.packing", "fill_requests"),
    ("encoding", "nami_pipelines.destinations.amplitude_client", "encode"),
    ("ledger", "nami_pipelines.delivery.run", "claim_rows"),
    # The writer's group commits, with every write in them (record, release, end_claims,
    # remember_sent_attributes) and the commit itself.
    ("ledger", "nami_pipelines.delivery.ledger_writer.LedgerWriter", "_commit"),
    ("ledger", "nami_pipelines.delivery.ledger.DeliveryLedger", "last_sent_attributes"),
    ("HTTP", "nami_pipelines.destinations.transport.HttpTransport", "post"),
)


def _owner(path: str) -> Any:
    """A module, or a class given as `module.Class`."""
    import importlib

    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def install(timer: StageTimer) -> None:
    """Time our sender's stages in this process (for the benchmark's child only)."""
    for stage, path, attribute in _TIMED:
        owner = _owner(path)
        setattr(owner, attribute, timer.wrap(stage, getattr(owner, attribute)))
