"""The real thing: dagster-webserver and dagster-daemon on the production instance (PostgreSQL),
driven through the webserver's GraphQL API with the calls the UI makes.

Every event reaches the stack as Nami sends it: a signed native body POSTed to one of the
receiver's replicas (`nami-pipelines receive`, as deploy/receiver.yaml runs it), which must answer
each one 200 `stored`, and a re-post of each one to the other replica 200 `duplicate`. A backfill
of 3 days of 2 integrations' assets must deliver exactly the selected events of those days to
those integrations (nothing of other days, apps, platforms or integrations), with never more than
2 days of one integration sent at once (its pool);
then, with the sensor switched on, a late batch posted afterwards must reach every integration,
while the already delivered events of the partitions it re-runs are not sent twice.
"""

import time
from collections.abc import Iterable
from datetime import date

import pytest

from nami_pipelines_tests.production.conftest import BackfillOutcome
from nami_pipelines_tests.production.deliveries import DeliverySnapshot, selected_ids
from nami_pipelines_tests.production.processes import wait_until
from nami_pipelines_tests.production.stack import (
    LOCATION_NAME,
    SENSOR_NAME,
    ProductionStack,
    deliveries_asset,
)
from nami_pipelines_tests.production.webhooks import post_bodies, write_signed_bodies

# With `--dist loadgroup`, xdist keeps this package's tests on one worker (one stack).
pytestmark = pytest.mark.xdist_group("production_stack")

SENSOR_USERS = 200
SENSOR_SEED = 4242
SENSOR_DELIVERY_SECONDS = 120.0
FIRST_TICK_SECONDS = 60.0
RUNS_SETTLE_SECONDS = 90.0
UNFINISHED_RUN_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
OBSERVATION_SECONDS = 120.0
EVENTS_SENSOR = "nami_events_observation_sensor"
POOL_LIMIT = 2


def delivery_step(integration: str) -> str:
    """The step (op) Dagster runs for one integration's asset."""
    return "__".join(deliveries_asset(integration))


def most_at_once(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of (start, end) intervals that overlap at one instant."""
    edges = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def test_backfill_launched_like_the_ui_delivers_exactly_the_selected_events(
    dagster_stack: ProductionStack, backfill: BackfillOutcome
) -> None:
    stack = dagster_stack
    assert backfill.partition_names == [day.isoformat() for day in backfill.days]
    assert backfill.status == "COMPLETED_SUCCESS", (backfill.status, stack.logs())
    failed = {run["runId"]: run["status"] for run in backfill.runs if run["status"] != "SUCCESS"}
    assert not failed, f"runs did not succeed: {failed}\n{stack.logs()}"
    # Each (day, integration) delivered by exactly one successful step, in a run of that day
    # (the runs also hold the assets' deliveries_not_behind checks, as the UI's launch does).
    delivery_steps = {delivery_step(name) for name in backfill.integrations}
    steps = [
        (run["tags"]["dagster/partition"], step)
        for run in backfill.runs
        for step in run["stepStats"]
        if step["stepKey"] in delivery_steps
    ]
    assert {step["status"] for _, step in steps} == {"SUCCESS"}, backfill.runs
    assert sorted((day, step["stepKey"]) for day, step in steps) == sorted(
        (day, delivery_step(name))
        for day in backfill.partition_names
        for name in backfill.integrations
    ), backfill.runs
    for run in backfill.runs:
        assert run["tags"]["dagster/from_ui"] == "true"
    # Each integration's pool (deploy/dagster.yaml: `pools: default_limit: 2`): at most 2 of
    # its days were being sent at any instant, over 3 days backfilled at once.
    assert backfill.pools["config"]["poolGranularity"] == "op", backfill.pools
    assert backfill.pools["config"]["defaultPoolLimit"] == POOL_LIMIT, backfill.pools
    peaks = {}
    for name in backfill.integrations:
        pool = "/".join(deliveries_asset(name))
        assert backfill.pools["limits"][pool] == POOL_LIMIT, backfill.pools
        intervals = [
            (step["startTime"], step["endTime"])
            for _, step in steps
            if step["stepKey"] == delivery_step(name)
        ]
        assert len(intervals) == len(backfill.days) > POOL_LIMIT
        peaks[name] = most_at_once(intervals)
        assert peaks[name] <= POOL_LIMIT, (name, intervals)
    # Every webhook committed once: each body stored, each re-post (to the other replica) a
    # duplicate adding nothing.
    assert len(stack.receiver_urls) >= 2, "replicas, as deploy/receiver.yaml runs them"
    webhooks, reposted = backfill.webhooks, backfill.reposted
    assert webhooks.posted > 1_000 and webhooks.only(200, "stored"), webhooks.answers
    assert reposted.posted == webhooks.posted and reposted.only(200, "duplicate"), reposted
    delivered = backfill.delivered
    events = delivered.events
    assert len(events) == webhooks.posted == events["event_id"].nunique()
    # Events of other apps and platforms exist, so "exactly" below means something.
    assert (events["app_id"] != stack.integrations["ios_feed"].app_id).any()
    assert (events["platform_type"] != "apple").any()
    for name, integration in stack.integrations.items():
        ledger, received = delivered.ledgers[name], delivered.received[name]
        if name not in backfill.integrations:
            assert not ledger.all and not received, f"{name} was not in the backfill"
            continue
        expected = selected_ids(events, integration, backfill.days)
        assert ledger.all == expected, f"{name}: every selected event has a ledger outcome"
        assert not ledger.pending and not ledger.rejected, name
        assert len(ledger.skipped) < len(expected) / 2, f"{name}: skipped {len(ledger.skipped)}"
        assert sorted(received) == sorted(expected - ledger.skipped), name
        assert delivered.duplicates[name] == 0, f"{name} sent an event twice"

    # What the UI shows: each asset's backfilled days materialized, with the numbers it plots.
    assert backfill.materialized == {
        (day.isoformat(), name) for day in backfill.days for name in backfill.integrations
    }
    for (day, name), numbers in sorted(backfill.metadata.items()):
        ledger = delivered.ledgers[name]
        expected = selected_ids(events, stack.integrations[name], [date.fromisoformat(day)])
        key = (day, name)
        assert numbers["selected"] == len(expected), (key, numbers)
        assert numbers["accepted"] == len(expected & ledger.accepted), (key, numbers)
        assert numbers["skipped"] == len(expected & ledger.skipped), (key, numbers)
        assert numbers["already_sent"] == 0, (key, numbers)
    assert set(backfill.metadata) == backfill.materialized
    print(
        f"\nbackfill {backfill.backfill_id}: {len(backfill.runs)} runs, "
        f"{backfill.webhooks.posted} webhooks stored, finished in {backfill.seconds:.0f}s; "
        f"most days sent at once per integration: {peaks}"
    )


def test_sensor_sends_webhooks_received_while_it_is_on(
    dagster_stack: ProductionStack, backfill: BackfillOutcome, tmp_path
) -> None:
    stack = dagster_stack
    repository = stack.graphql.loaded_repositories()[LOCATION_NAME]
    assert repository["name"] == "__repository__"
    assert SENSOR_NAME in {sensor["name"] for sensor in repository["sensors"]}
    selector = stack.sensor_selector()
    assert stack.graphql.sensor(selector)["status"] == "STOPPED", "off by default"

    # The history is delivered (the backfill): start the sensor from the current load position,
    # as an operator does with the sensor page's "Edit cursor". From an empty cursor, its first
    # tick would request a run for every (day, integration) with events since the first load.
    loaded_seq = stack.store.max_loaded_seq()
    assert stack.graphql.set_sensor_cursor(selector, str(loaded_seq)) == str(loaded_seq)
    assert stack.graphql.start_sensor(selector) == "RUNNING"
    first_tick = wait_until(
        lambda: _first_tick(stack, selector),
        timeout=FIRST_TICK_SECONDS,
        what="the sensor's first tick",
        explain=lambda: f"{stack.graphql.sensor(selector)}\n{stack.logs()}",
    )
    assert first_tick["status"] == "SKIPPED", first_tick
    assert str(loaded_seq) in first_tick["skipReason"], first_tick

    # A late batch for yesterday: that day's ios_feed and amplitude_prod partitions were
    # backfilled (their old events must not be sent again); android_feed's never ran.
    yesterday = backfill.days[-1]
    bodies = write_signed_bodies(
        tmp_path,
        stack.webhook_secrets,
        users=SENSOR_USERS,
        days=1,
        start=yesterday,
        seed=SENSOR_SEED,
    )
    webhooks = post_bodies(stack.receiver_urls, bodies, seed=SENSOR_SEED)
    assert webhooks.posted >= 200 and webhooks.only(200, "stored"), webhooks.answers
    received_at = time.monotonic()
    partition_days = {
        name: set(backfill.days) if name in backfill.integrations else {yesterday}
        for name in stack.integrations
    }

    def everything_delivered() -> DeliverySnapshot | None:
        stack.check_processes()
        now = DeliverySnapshot.capture(stack.store, stack.emulator, stack.integrations.values())
        for name, integration in stack.integrations.items():
            ledger = now.ledgers[name]
            if ledger.pending or ledger.all != selected_ids(
                now.events, integration, partition_days[name]
            ):
                return None
            if sorted(now.received[name]) != sorted(ledger.accepted):
                return None
        return now

    wait_until(
        everything_delivered,
        timeout=SENSOR_DELIVERY_SECONDS,
        interval=1.0,
        what="the new events to reach every integration",
        explain=lambda: f"{_run_summary(stack)}\n{stack.logs()}",
    )
    latency = time.monotonic() - received_at

    # The runs end once attribute updates are sent and the metadata recorded; wait for that.
    wait_until(
        lambda: not stack.graphql.runs({"statuses": UNFINISHED_RUN_STATUSES}),
        timeout=RUNS_SETTLE_SECONDS,
        interval=2.0,
        what="the sensor's runs to finish",
        explain=lambda: _run_summary(stack),
    )
    runs = stack.graphql.runs()
    assert all(run["status"] == "SUCCESS" for run in runs), _run_summary(stack)
    sensor_runs = [run for run in runs if run["tags"].get("dagster/sensor_name") == SENSOR_NAME]
    # Runs for each integration that received new events, for that day and that asset alone
    # (one per tick that saw some of the batch: a batch posted across two ticks makes two).
    assert {
        (run["tags"]["dagster/partition"], run["tags"]["nami/integration"]) for run in sensor_runs
    } == {(yesterday.isoformat(), name) for name in stack.integrations}, _run_summary(stack)
    for run in sensor_runs:
        assert run["assetSelection"] == [
            {"path": deliveries_asset(run["tags"]["nami/integration"])}
        ], run

    final = DeliverySnapshot.capture(stack.store, stack.emulator, stack.integrations.values())
    events = final.events
    new_ids = set(events.loc[events["loaded_seq"] > loaded_seq, "event_id"])
    for name, integration in stack.integrations.items():
        ledger = final.ledgers[name]
        expected = selected_ids(events, integration, partition_days[name])
        assert expected & new_ids, f"{name}: the new batch had events for it"
        assert ledger.all == expected and not ledger.pending and not ledger.rejected, name
        assert sorted(final.received[name]) == sorted(expected - ledger.skipped), name
        # ios_feed and amplitude_prod re-ran a backfilled day: the ledger skipped what was sent.
        assert final.duplicates[name] == 0, f"{name} sent an event twice"
    print(
        f"\nsensor: {len(sensor_runs)} runs; {webhooks.posted} new webhooks reached "
        f"{len(stack.integrations)} integrations {latency:.0f}s after their 2xx"
    )


def test_nami_events_is_observed_with_nobody_clicking(
    dagster_stack: ProductionStack, backfill: BackfillOutcome
) -> None:
    """The observation sensor is on by default: the asset page shows what the table holds."""
    stack = dagster_stack
    assert stack.graphql.sensor(stack.sensor_selector(EVENTS_SENSOR))["status"] == "RUNNING"

    def observed_now() -> dict[str, int] | None:
        stack.check_processes()
        latest = stack.graphql.latest_observation(["nami_events"])
        if latest is None or latest["max_loaded_seq"] != stack.store.max_loaded_seq():
            return None
        return latest

    latest = wait_until(
        observed_now,
        timeout=OBSERVATION_SECONDS,
        interval=2.0,
        what="an observation of nami_events at the current loaded_seq",
        explain=lambda: f"{stack.graphql.sensor(stack.sensor_selector(EVENTS_SENSOR))}",
    )
    assert latest["rows"] == stack.store.count_events() >= backfill.webhooks.posted
    assert latest["quarantined"] == stack.store.count_quarantined()


def _first_tick(stack: ProductionStack, selector: dict[str, str]) -> dict | None:
    stack.check_processes()
    ticks = stack.graphql.sensor(selector)["ticks"]
    return next((tick for tick in ticks if tick["status"] != "STARTED"), None)


def _run_summary(stack: ProductionStack) -> str:
    runs = stack.graphql.runs()
    return "runs: " + ", ".join(
        f"{run['tags'].get('dagster/partition', run['jobName'])}={run['status']}" for run in runs
    )
