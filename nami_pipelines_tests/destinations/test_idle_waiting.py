"""Waiting is idle: while every request waits for its retry time (a destination that refuses
connections, a Retry-After), the sender sleeps instead of spinning on a core."""

import socket
import time
from collections.abc import Callable, Sequence

from nami_pipelines.destinations.amplitude_client import AmplitudeClient
from nami_pipelines.destinations.http import RetryPolicy, Unresolved
from nami_pipelines.destinations.outcomes import OutcomeGroup
from nami_pipelines.emulators import FaultRule
from nami_pipelines.snapshots.attributes import UserAttributes
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS
from nami_pipelines_tests.destinations.support import (
    amplitude_integration,
    chunk,
    generated,
    per_event,
)

# Full jitter under a 2 s ceiling: about 1 s a retry, so 30 attempts wait about 30 s.
REFUSED_FOR_30_SECONDS = RetryPolicy(max_attempts=30, base_delay=2.0, max_delay=2.0)
SHARE_OF_A_CORE = 0.10


class CollectingSink:
    def __init__(self) -> None:
        self.settled: list[OutcomeGroup] = []
        self.pending: list[Unresolved] = []

    def outcomes(self, groups: list[OutcomeGroup], attempts: int) -> None:
        self.settled.extend(groups)

    def unresolved(self, unresolved: Unresolved) -> None:
        self.pending.append(unresolved)

    def attributes_delivered(
        self, users: Sequence[str], attributes: dict[str, UserAttributes]
    ) -> None:
        pass


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def share_of_a_core(work: Callable[[], None]) -> float:
    """CPU time of this whole process (every thread) over the wall time `work` took."""
    cpu, wall = time.process_time(), time.monotonic()
    work()
    return (time.process_time() - cpu) / (time.monotonic() - wall)


def test_a_destination_refusing_connections_for_30_seconds_costs_no_core(monkeypatch):
    monkeypatch.setenv("AMPLITUDE_KEY", "amplitude-key-for-a-closed-port")
    integration = amplitude_integration(endpoint=f"http://127.0.0.1:{closed_port()}/2/httpapi")
    client = AmplitudeClient(integration, policy=REFUSED_FOR_30_SECONDS, seed=3)
    sink = CollectingSink()
    events = chunk(generated(users=3, days=1, seed=2))

    used = share_of_a_core(lambda: client.send_events(events, historical=False, sink=sink))

    assert used < SHARE_OF_A_CORE
    assert client.stats.transport_errors == 30 * len(sink.pending)
    assert sink.pending and all(
        item.reason == "gave up after 30 attempts: transport error: ConnectionError"
        for item in sink.pending
    )
    assert not sink.settled or {o.status for o in sink.settled} == {"skipped"}


def test_waiting_out_retry_after_costs_no_core(fresh_emulator, monkeypatch):
    monkeypatch.setenv("AMPLITUDE_KEY", AMPLITUDE_KEYS["amplitude_prod"])
    fresh_emulator.inject_faults(FaultRule("throttle", retry_after=2, count=2, api="amplitude"))
    integration = amplitude_integration(endpoint=fresh_emulator.amplitude_url)
    client = AmplitudeClient(integration, policy=RetryPolicy(max_attempts=5, max_delay=5))
    sink = CollectingSink()
    events = chunk(generated(users=2, days=1, seed=2))

    used = share_of_a_core(lambda: client.send_events(events, historical=False, sink=sink))

    assert used < SHARE_OF_A_CORE
    assert client.stats.throttled == 2 and not sink.pending
    accepted = [o for o in per_event(sink.settled) if o[1] == "accepted"]
    assert len(accepted) == fresh_emulator.stats()["amplitude"]["unique_events"] > 0
