"""Benchmark cases that run in a process of their own: `python -m benchmarks.child TASK`, with
the arguments as JSON on stdin and the result as one JSON line on stdout.

A fresh process per case means each case's peak RSS is its own, its CPU time is its own, and one
case's heap (200,000 payloads held for an SDK) cannot slow the next one's garbage collector.
"""

import cProfile
import gc
import json
import pickle
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.common import (
    AMPLITUDE_KEY,
    MPARTICLE_KEY,
    MPARTICLE_SECRET,
    day_outgoing,
    export_credentials,
    integration_for,
)
from benchmarks.measure import Span, children_peak_rss_mb, current_rss_mb, peak_rss_mb, timed
from benchmarks.stages import StageTimer, install
from nami_pipelines.destinations.outgoing import OutgoingEvents

Task = Callable[[dict[str, Any]], dict[str, Any]]


def _span(span: Span) -> dict[str, Any]:
    return {
        "seconds": span.seconds,
        "client_cpu_seconds": span.client_cpu_seconds,
        "emulator_cpu_seconds": span.emulator_cpu_seconds,
        "load_before": span.load_before,
        "load_after": span.load_after,
    }


def _store(arguments: dict[str, Any]) -> Any:
    from nami_pipelines.events.store import EventStore

    return EventStore(f"sqlite:///{arguments['database']}")


def ours(arguments: dict[str, Any]) -> dict[str, Any]:
    """`deliver_day` with everything the product does: read the day in chunks, claim in the
    ledger, look up attributes as of each event, map, pack, send, record outcomes, then sync
    the touched users' attributes; in `workers` processes, as the integration configures."""
    from nami_pipelines.delivery.ledger import DeliveryLedger
    from nami_pipelines.delivery.shards import deliver_day_with_workers
    from nami_pipelines.snapshots.repository import SnapshotRepository

    store = _store(arguments)
    integration = integration_for(
        arguments["api"],
        arguments["url"],
        name=arguments.get("name"),
        max_in_flight=arguments["max_in_flight"],
        workers=arguments.get("workers", 1),
    )
    ledger = DeliveryLedger(store.engine)
    repository = SnapshotRepository(store.engine)
    # Stages can only be timed in this process: with one worker, the whole sender.
    stages = StageTimer() if integration.delivery.workers == 1 else None
    if stages is not None:
        install(stages)
    baseline = current_rss_mb()
    profiler = cProfile.Profile() if arguments.get("profile") else None
    with timed(arguments.get("emulator_pid")) as span:
        if profiler is not None:
            profiler.enable()
        report = deliver_day_with_workers(
            store=store,
            repository=repository,
            ledger=ledger,
            integration=integration,
            day=date.fromisoformat(arguments["day"]),
        )
        if profiler is not None:
            profiler.disable()
    if profiler is not None:
        profiler.dump_stats(arguments["profile"])
    return {
        **_span(span),
        "events": report.selected,
        "acknowledged": report.accepted,
        "failed": report.rejected + report.skipped + report.unresolved,
        "requests": report.requests,
        "retries": report.retries,
        "throttled": report.throttled,
        "attribute_updates": report.attribute_updates,
        "reasons": report.reasons,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _peak_with_workers(integration.delivery.workers),
        "workers": integration.delivery.workers,
        "stage_cpu_seconds": None if stages is None else stages.seconds,
    }


def _peak_with_workers(workers: int) -> float:
    """Peak RSS, with worker processes all at their peak at once: an upper bound."""
    return peak_rss_mb() + (workers * children_peak_rss_mb() if workers > 1 else 0.0)


def _prepared(arguments: dict[str, Any]) -> OutgoingEvents:
    """The day's outgoing events, untimed. Both integrations select the same events (every
    type of the production app), so the list is built once per dataset and kept beside it."""
    cache = Path(arguments["outgoing_cache"]) if arguments.get("outgoing_cache") else None
    if cache is not None and cache.exists():
        with cache.open("rb") as stored:
            return pickle.load(stored)
    store = _store(arguments)
    integration = integration_for(arguments["api"], arguments["url"])
    outgoing = day_outgoing(store, integration, date.fromisoformat(arguments["day"]))
    store.engine.dispose()
    if cache is not None:
        partial = cache.with_suffix(".partial")
        with partial.open("wb") as out:
            pickle.dump(outgoing, out, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(cache)
    return outgoing


def outgoing(arguments: dict[str, Any]) -> dict[str, Any]:
    """Builds the list the SDKs and the ceiling start from, ahead of their cases."""
    return {"events": len(_prepared(arguments))}


def _freeze() -> None:
    """A collection, then a freeze: the inputs stay out of the garbage collector's way while
    the clock runs, as they would in a long-lived process that had held them for a while."""
    gc.collect()
    gc.freeze()


def amplitude_sdk(arguments: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.official import amplitude_flush_size, send_with_amplitude_sdk

    outgoing = _prepared({**arguments, "api": "amplitude"})
    flush_size = arguments.get("flush_queue_size") or amplitude_flush_size(outgoing)
    _freeze()
    with timed(arguments.get("emulator_pid")) as span:
        run = send_with_amplitude_sdk(
            outgoing,
            api_key=AMPLITUDE_KEY,
            server_url=f"{arguments['url']}/2/httpapi",
            flush_queue_size=flush_size,
            timeout=arguments.get("timeout", 600),
        )
    return {
        **_span(span),
        "events": run.events,
        "acknowledged": run.acknowledged,
        "failed": run.failed,
        "mapping_seconds": run.mapping_seconds,
        "errors": run.errors,
        "settings": run.settings,
        "peak_rss_mb": peak_rss_mb(),
    }


def mparticle_sdk(arguments: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.official import send_with_mparticle_sdk

    outgoing = _prepared({**arguments, "api": "mparticle"})
    _freeze()
    with timed(arguments.get("emulator_pid")) as span:
        run = send_with_mparticle_sdk(
            outgoing,
            host=f"{arguments['url']}/v2",
            key=MPARTICLE_KEY,
            secret=MPARTICLE_SECRET,
            workers=arguments["max_in_flight"],
        )
    return {
        **_span(span),
        "events": run.events,
        "acknowledged": run.acknowledged,
        "failed": run.failed,
        "requests": run.requests,
        "mapping_seconds": run.mapping_seconds,
        "errors": run.errors,
        "settings": run.settings,
        "peak_rss_mb": peak_rss_mb(),
    }


def ceiling(arguments: dict[str, Any]) -> dict[str, Any]:
    """Our mapping's payloads (built untimed), sent by the minimal sender."""
    from benchmarks.ceiling import send_amplitude_ceiling, send_mparticle_ceiling
    from nami_pipelines.destinations.amplitude_mapping import build_amplitude_events
    from nami_pipelines.destinations.mparticle_mapping import build_mparticle_batches

    api = arguments["api"]
    outgoing = _prepared(arguments)
    integration = integration_for(api, arguments["url"])
    url = arguments["url"]
    workers = arguments["max_in_flight"]
    if api == "amplitude":
        events = build_amplitude_events(outgoing, integration)[0]
        del outgoing
        _freeze()
        with timed(arguments.get("emulator_pid")) as span:
            run = send_amplitude_ceiling(
                events, url=f"{url}/2/httpapi", api_key=AMPLITUDE_KEY, workers=workers
            )
    else:
        batches = [batch.body for batch in build_mparticle_batches(outgoing, integration)[0]]
        del outgoing
        _freeze()
        with timed(arguments.get("emulator_pid")) as span:
            run = send_mparticle_ceiling(
                batches,
                url=f"{url}/v2/bulkevents",
                auth=(MPARTICLE_KEY, MPARTICLE_SECRET),
                workers=workers,
            )
    return {
        **_span(span),
        "events": run.events,
        "acknowledged": run.acknowledged,
        "failed": run.failed,
        "requests": run.requests,
        "statuses": run.statuses,
        "settings": run.settings,
        "peak_rss_mb": peak_rss_mb(),
    }


def snapshot(arguments: dict[str, Any]) -> dict[str, Any]:
    """`materialize_day` for one day, as the daily asset runs it (from scratch when the day
    before was never computed, else incrementally); repeated `repeat` times."""
    from nami_pipelines.snapshots.daily import materialize_day
    from nami_pipelines.snapshots.repository import SnapshotRepository

    store = _store(arguments)
    repository = SnapshotRepository(store.engine)
    baseline = current_rss_mb()
    spans = []
    result = None
    for _ in range(arguments.get("repeat", 1)):
        with timed() as span:
            result = materialize_day(store, repository, date.fromisoformat(arguments["day"]))
        spans.append(span)
    assert result is not None
    fastest = min(spans, key=lambda span: span.seconds)
    return {
        **_span(fastest),
        "runs": [span.seconds for span in spans],
        "mode": result.mode,
        "users": result.users,
        "recomputed_users": result.recomputed_users,
        "day_events": result.day_events,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
    }


def dataset(arguments: dict[str, Any]) -> dict[str, Any]:
    """Builds a cached dataset (see `benchmarks.datasets`)."""
    from benchmarks.datasets import build_dataset

    return build_dataset(arguments["kind"], arguments["parameters"], Path(arguments["folder"]))


TASKS: dict[str, Task] = {
    "dataset": dataset,
    "outgoing": outgoing,
    "ours": ours,
    "amplitude_sdk": amplitude_sdk,
    "mparticle_sdk": mparticle_sdk,
    "ceiling": ceiling,
    "snapshot": snapshot,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TASKS:
        print(f"usage: python -m benchmarks.child {{{','.join(TASKS)}}} < arguments.json")
        return 2
    export_credentials()
    arguments = json.loads(sys.stdin.read() or "{}")
    if "database" in arguments:
        arguments["database"] = str(Path(arguments["database"]))
    result = TASKS[argv[0]](arguments)
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
