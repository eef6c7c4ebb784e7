"""The garbage collector held back while a day is sent, and run once per chunk instead.

A chunk allocates hundreds of thousands of short-lived containers (parsed payloads, attribute
lists, the dicts that are sent). Python's collector starts a pass every 700 allocations and,
as survivors pile up, full passes over the whole heap: measured on the benchmark day, that was
close to half of the CPU time of a delivery. Nearly all of it is freed by reference counting,
so automatic collection is paused while deliveries run and the young generations are collected
after each chunk, which bounds whatever cyclic garbage a chunk leaves.

The collector is process-wide: several deliveries in threads of one process share one pause,
and it ends (the collector is re-enabled, if it was on) when the last of them finishes.
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic garbage collection off for the duration (see the module's docstring)."""
    global _active, _was_enabled
    with _lock:
        if _active == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _was_enabled:
                gc.enable()


def collect_chunk_garbage() -> None:
    """Collect what the chunk just sent left in the young generations."""
    gc.collect(1)
