"""Runs days of integrations' delivery assets through Dagster from a script: what the CLI's
backfill and the demo use, recorded in the instance like runs launched from the UI."""

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from nami_pipelines.config import AnyIntegration
from nami_pipelines.defs.delivery.assets import INTEGRATION_TAG, RESEND_TAG, build_delivery_asset
from nami_pipelines.defs.partitions import PARTITIONS_START_VARIABLE, daily_partitions
from nami_pipelines.defs.resources import event_store_resource

# Scripted runs print their own summary: Dagster's console logger would print every step
# failure with its stack trace. The run's full log is still in the instance (the UI shows it).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class DagsterRunFailed(RuntimeError):
    """A run failed; the message is its step's failure description (for the one-line error),
    `details` the full error with its stack trace (for `--debug`)."""

    def __init__(self, message: str, *, run_id: str, details: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.details = details


class PartitionOutOfRange(ValueError):
    """A day the daily partitions do not include (before their start, or after today)."""


def _innermost(error: SerializableErrorInfo) -> SerializableErrorInfo:
    while error.cause is not None:
        error = error.cause
    return error


def failure_of(result: dg.ExecuteInProcessResult) -> DagsterRunFailed:
    """The failed run's reason as the step reported it: a `Failure`'s description, else the
    message of the exception that caused it (not Dagster's wrapper around it)."""
    messages, details = [], []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            messages.append(data.user_failure_data.description)
        else:
            messages.append(_innermost(data.error).message.strip())
        details.append(data.error.to_string())
    run_id = result.run_id
    message = "; ".join(dict.fromkeys(messages)) or f"the Dagster run {run_id} failed"
    return DagsterRunFailed(message, run_id=run_id, details="\n".join(details))


def run_metadata(result: dg.ExecuteInProcessResult, node: str) -> dict:
    """A successful run's materialization metadata as plain values."""
    if not result.success:
        raise failure_of(result)
    materialization = result.asset_materializations_for_node(node)[0]
    return {key: value.value for key, value in materialization.metadata.items()}


def check_days_in_partitions(days: Sequence[date]) -> None:
    """Every day must be a partition, or Dagster refuses the run with a stack trace."""
    outside = [day for day in days if not daily_partitions.has_partition_key(day.isoformat())]
    if outside:
        first = daily_partitions.get_first_partition_key()
        last = daily_partitions.get_last_partition_key()
        raise PartitionOutOfRange(
            f"{outside[0]} is outside the daily partitions ({first} .. {last}); earlier days "
            f"need {PARTITIONS_START_VARIABLE}"
        )


def backfill_deliveries(
    integrations: Sequence[AnyIntegration],
    days: Sequence[date],
    *,
    instance: dg.DagsterInstance,
    resend: bool = False,
    on_partition: Callable[[date, str, dict], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each (day, integration) in day order; returns per integration the numeric metadata
    summed, and the reasons' counts (`skipped_reasons`, ...) added up.

    Runs are not retried by Dagster here (a retry policy's waits would look like a hang at a
    terminal): a failed run stops the backfill with the run's own reason.
    """
    check_days_in_partitions(days)
    assets = {i.name: build_delivery_asset(i, retry_policy=None) for i in integrations}
    totals: dict[str, dict[str, Any]] = {integration.name: {} for integration in integrations}
    for day in days:
        for integration in integrations:
            deliveries = assets[integration.name]
            result = dg.materialize(
                [deliveries],
                partition_key=day.isoformat(),
                instance=instance,
                resources={"event_store": event_store_resource()},
                run_config=QUIET_RUN_CONFIG,
                tags={
                    INTEGRATION_TAG: integration.name,
                    **({RESEND_TAG: "true"} if resend else {}),
                },
                raise_on_error=False,
            )
            if not result.success:
                failure = failure_of(result)
                raise DagsterRunFailed(
                    f"{integration.name} {day}: {failure}",
                    run_id=failure.run_id,
                    details=failure.details,
                )
            metadata = run_metadata(result, deliveries.op.name)
            if on_partition is not None:
                on_partition(day, integration.name, metadata)
            add_partition_metadata(totals[integration.name], metadata)
    return totals


def add_partition_metadata(total: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Sum a partition's counts into `total`, and its reason -> events maps (`*_reasons`)."""
    for name, value in metadata.items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[name] = total.get(name, 0) + value
        elif name.endswith("_reasons") and isinstance(value, dict):
            reasons = total.setdefault(name, {})
            for reason, count in value.items():
                reasons[reason] = reasons.get(reason, 0) + count
