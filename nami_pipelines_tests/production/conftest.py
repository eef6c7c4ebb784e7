"""Fixtures of the production end-to-end tests: one running stack and one backfill through it.

Both are package-scoped so the browser test looks at the very stack and backfill the API test
checked, at the cost of one stack start. Under pytest-xdist a worker that gets only some of
these tests builds its own stack (own databases, ports and emulator), so no test depends on
another having run first.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from nami_pipelines.emulators import FaultRule
from nami_pipelines_tests.production.browser import INSTALL_HINT, chromium_path
from nami_pipelines_tests.production.deliveries import DeliverySnapshot
from nami_pipelines_tests.production.graphql import FINISHED_RUN_STATUSES, materialized_days
from nami_pipelines_tests.production.processes import wait_until
from nami_pipelines_tests.production.stack import (
    ProductionStack,
    deliveries_asset,
    production_stack,
)
from nami_pipelines_tests.production.webhooks import (
    WebhookAnswers,
    post_bodies,
    write_signed_bodies,
)

# CI sets it, so a browser missing there fails the browser test instead of skipping it.
REQUIRE_BROWSER_VARIABLE = "NAMI_REQUIRE_BROWSER"
BACKFILL_INTEGRATIONS = ("ios_feed", "amplitude_prod")
# Three days per integration: one more than its pool's limit of 2, so the limit has work to hold.
BACKFILL_DAYS = 3
BACKFILL_USERS = 1_000
BACKFILL_SEED = 2026
BACKFILL_SECONDS = 420.0
# Every mParticle answer is this late during the backfill, so each ios_feed day takes longer than
# the runs take to start one after another: all three days want to send at once, and only the
# pool keeps it to two.
SLOW_ANSWER_SECONDS = 6.0
# Dagster marks a backfill finished on its daemon's next iteration after the last run.
TERMINAL_BACKFILL_STATUSES = frozenset(
    {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
)


@dataclass(frozen=True)
class BackfillOutcome:
    """A backfill launched through GraphQL, once its runs and the backfill itself finished."""

    backfill_id: str
    days: list[date]
    integrations: tuple[str, ...]
    # The days picked in the dialog, as the UI spells them.
    partition_names: list[str]
    # The first post of every body, then the same bodies posted again (Nami's retries), each
    # to the other replica.
    webhooks: WebhookAnswers
    reposted: WebhookAnswers
    status: str
    runs: list[dict[str, Any]]
    seconds: float
    # Taken as the backfill ended (later tests change the stack's state).
    delivered: DeliverySnapshot
    # (day, integration) pairs the UI shows materialized, and their numbers.
    materialized: set[tuple[str, str]]
    metadata: dict[tuple[str, str], dict[str, int]]
    # The instance's pool settings and each pool's limit (Deployment > Concurrency).
    pools: dict[str, Any]


@pytest.fixture(scope="package")
def chromium() -> str:
    """The browser's path; skips without one (fails where CI demands it). Package-scoped and
    listed first by the browser test, so it decides before a stack is started for nothing."""
    executable = chromium_path()
    if executable is None:
        reason = f"Chromium is not installed: {INSTALL_HINT}"
        if os.environ.get(REQUIRE_BROWSER_VARIABLE):
            pytest.fail(f"{REQUIRE_BROWSER_VARIABLE} is set but {reason}")
        pytest.skip(reason)
    return executable


@pytest.fixture(scope="package")
def dagster_stack(
    postgres_admin_engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProductionStack]:
    """dagster-webserver on the production instance (PostgreSQL), the emulator, the event
    database; the daemon starts with the first backfill. Skips (fails under
    NAMI_REQUIRE_POSTGRES) where PostgreSQL is unavailable, through `postgres_admin_engine`."""
    with production_stack(postgres_admin_engine, tmp_path_factory.mktemp("production")) as running:
        yield running


@pytest.fixture(scope="package")
def backfill(
    dagster_stack: ProductionStack, tmp_path_factory: pytest.TempPathFactory
) -> BackfillOutcome:
    """Posts two recent days of events to the receiver's replicas as signed webhooks (then all
    of them again, each to another replica, as Nami's retries may land), and backfills them for
    two integrations' assets, the way the UI's Materialize dialog does (both assets selected, the
    days picked), then waits (bounded) for the runs and the backfill to end.
    Assertions are the tests' job; this only fails when the wait runs out."""
    stack = dagster_stack
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=BACKFILL_DAYS - offset) for offset in range(BACKFILL_DAYS)]
    bodies = write_signed_bodies(
        tmp_path_factory.mktemp("backfill"),
        stack.webhook_secrets,
        users=BACKFILL_USERS,
        days=BACKFILL_DAYS,
        start=days[0],
        seed=BACKFILL_SEED,
    )
    webhooks = post_bodies(stack.receiver_urls, bodies, seed=BACKFILL_SEED)
    # Each retry lands on the other replica: it must find the event its sibling stored.
    reposted = post_bodies(stack.receiver_urls, bodies, seed=BACKFILL_SEED + 1, first_replica=1)
    partition_names = [day.isoformat() for day in days]
    assets = [deliveries_asset(name) for name in BACKFILL_INTEGRATIONS]
    stack.emulator.inject_faults(
        FaultRule(kind="slow", api="mparticle", delay_seconds=SLOW_ANSWER_SECONDS)
    )
    started = time.monotonic()
    backfill_id = stack.graphql.launch_asset_backfill(assets, partition_names)
    stack.start_daemon()

    def finished() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        stack.check_processes()
        runs = stack.graphql.backfill_runs(backfill_id)
        state = stack.graphql.backfill(backfill_id)
        done = bool(runs) and all(run["status"] in FINISHED_RUN_STATUSES for run in runs)
        if done and state["status"] in TERMINAL_BACKFILL_STATUSES:
            return state, runs
        return None

    state, runs = wait_until(
        finished,
        timeout=BACKFILL_SECONDS,
        interval=2.0,
        what=f"backfill {backfill_id} of {partition_names} to finish",
        explain=lambda: f"runs: {stack.graphql.backfill_runs(backfill_id)}\n{stack.logs()}",
    )
    stack.emulator.inject_faults()  # answers at full speed again for the tests that follow
    materialized, metadata = set(), {}
    for name in BACKFILL_INTEGRATIONS:
        asset = deliveries_asset(name)
        statuses = stack.graphql.asset_partitions(asset)["assetPartitionStatuses"]
        materialized.update((day, name) for day in materialized_days(statuses))
        numbers = stack.graphql.materialization_metadata(asset, partition_names)
        metadata.update({(day, name): values for day, values in numbers.items()})
    return BackfillOutcome(
        backfill_id=backfill_id,
        days=days,
        integrations=BACKFILL_INTEGRATIONS,
        partition_names=partition_names,
        webhooks=webhooks,
        reposted=reposted,
        status=state["status"],
        runs=runs,
        seconds=time.monotonic() - started,
        delivered=DeliverySnapshot.capture(
            stack.store, stack.emulator, stack.integrations.values()
        ),
        materialized=materialized,
        metadata=metadata,
        pools=stack.graphql.pools(),
    )
