"""`deliveries/<integration>`: one daily-partitioned asset per configured integration.
Materializing a day sends that day's selected events and attribute updates to that integration,
and records what the UI plots over its partitions."""

from datetime import date

import dagster as dg

from nami_pipelines.config import AnyIntegration, IntegrationConfigError
from nami_pipelines.defs.delivery.descriptions import delivery_description
from nami_pipelines.defs.partitions import daily_partitions
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.defs.snapshots.assets import SNAPSHOTS_KEY
from nami_pipelines.delivery.ledger import PENDING, DeliveryLedger
from nami_pipelines.delivery.reasons import describe_reasons, reasons_markdown, top_reasons
from nami_pipelines.delivery.run import DeliveryReport, count_selected
from nami_pipelines.delivery.shards import deliver_day_with_workers
from nami_pipelines.destinations.outcomes import IntegrationStopped

DELIVERIES_PREFIX = "deliveries"
EVERY_EVENT_HAS_AN_OUTCOME = "every_selected_event_has_an_outcome"
RESEND_TAG = "nami/resend"
# Runs the sensor, the schedules and the command line start for one integration carry its name,
# so the UI's run list filters by integration.
INTEGRATION_TAG = "nami/integration"
EVENTS_KEY = dg.AssetKey("nami_events")


def deliveries_key(integration: str) -> dg.AssetKey:
    """The delivery asset of one integration: `deliveries/<name>`."""
    return dg.AssetKey([DELIVERIES_PREFIX, integration])


def delivery_pool(integration: str) -> str:
    """The concurrency pool of one integration's deliveries: dagster.yaml's `pools:
    default_limit` caps how many of its days are sent at once, whatever runs them."""
    return f"{DELIVERIES_PREFIX}/{integration}"


class DeliveryRunConfig(dg.Config):
    """Run options; `resend` sends already accepted events again (their ids stay the same)."""

    resend: bool = False


def report_metadata(report: DeliveryReport) -> dict[str, dg.MetadataValue]:
    """Numbers only (and one flag), so the UI can plot each over partitions."""
    return {
        "selected": dg.MetadataValue.int(report.selected),
        "accepted": dg.MetadataValue.int(report.accepted),
        "rejected": dg.MetadataValue.int(report.rejected),
        "skipped": dg.MetadataValue.int(report.skipped),
        "already_sent": dg.MetadataValue.int(report.already_done),
        "unresolved": dg.MetadataValue.int(report.unresolved),
        "attribute_updates": dg.MetadataValue.int(report.attribute_updates),
        "requests": dg.MetadataValue.int(report.requests),
        "retries": dg.MetadataValue.int(report.retries),
        "throttled": dg.MetadataValue.int(report.throttled),
        "events_per_second": dg.MetadataValue.float(round(report.events_per_second, 1)),
        "duration_seconds": dg.MetadataValue.float(round(report.duration_seconds, 3)),
        "historical_endpoint": dg.MetadataValue.bool(report.historical),
        **reason_metadata(report),
    }


def reason_metadata(report: DeliveryReport) -> dict[str, dg.MetadataValue]:
    """Reason -> events per status (JSON, for scripts) and one table of them (for reading)."""
    return {
        **{
            f"{status}_reasons": dg.MetadataValue.json(dict(top_reasons(reasons, limit=1_000)))
            for status, reasons in report.reasons.items()
            if reasons
        },
        "reasons": dg.MetadataValue.md(reasons_markdown(report.reasons)),
    }


def _progress_logger(context: dg.AssetExecutionContext, total: int):
    def log(report: DeliveryReport) -> None:
        done = report.accepted + report.rejected + report.skipped + report.already_done
        context.log.info(
            f"{report.integration} {report.day}: {done} of {total} selected events settled "
            f"({report.accepted} accepted, {report.events_per_second:.0f} events/s)"
        )

    return log


DEFAULT_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL)


def _disabled_result(context: dg.AssetExecutionContext, name: str) -> dg.MaterializeResult:
    context.log.warning(f"integration '{name}' is disabled: nothing sent")
    return dg.MaterializeResult(
        metadata={"disabled": dg.MetadataValue.bool(True)},
        check_results=[dg.AssetCheckResult(check_name=EVERY_EVENT_HAS_AN_OUTCOME, passed=True)],
    )


def _outcome_check(counts: dict[str, int], report: DeliveryReport) -> dg.AssetCheckResult:
    settled = report.selected - report.unresolved
    return dg.AssetCheckResult(
        check_name=EVERY_EVENT_HAS_AN_OUTCOME,
        passed=counts[PENDING] == 0 and settled == report.selected,
        metadata={
            "pending": dg.MetadataValue.int(counts[PENDING]),
            **{
                status: dg.MetadataValue.int(count)
                for status, count in counts.items()
                if status != PENDING
            },
            # Why the pending ones are pending (a retry budget spent, a reason another part of
            # delivery records), so the failed check explains itself.
            **(
                {
                    "pending_reasons": dg.MetadataValue.json(
                        dict(top_reasons(report.reasons[PENDING], limit=1_000))
                    )
                }
                if report.reasons.get(PENDING)
                else {}
            ),
        },
    )


def build_delivery_asset(
    integration: AnyIntegration,
    retry_policy: dg.RetryPolicy | None = DEFAULT_RETRY_POLICY,
) -> dg.AssetsDefinition:
    """The delivery asset of one integration, from its configuration."""
    key = deliveries_key(integration.name)

    @dg.asset(
        key=key,
        group_name="delivery",
        partitions_def=daily_partitions,
        deps=[EVENTS_KEY, SNAPSHOTS_KEY],
        kinds={integration.type},
        pool=delivery_pool(integration.name),
        check_specs=[
            dg.AssetCheckSpec(
                EVERY_EVENT_HAS_AN_OUTCOME,
                asset=key,
                description=(
                    f"Fails when a selected event of the day is left without an outcome for "
                    f"{integration.name} (still pending in the ledger); the metadata gives the "
                    "ledger's counts per status and why events are pending."
                ),
            )
        ],
        retry_policy=retry_policy,
        description=delivery_description(integration),
    )
    def deliveries(
        context: dg.AssetExecutionContext,
        config: DeliveryRunConfig,
        event_store: EventStoreResource,
    ) -> dg.MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        if not integration.enabled:
            return _disabled_result(context, integration.name)
        store = event_store.store()
        ledger = DeliveryLedger(store.engine)
        resend = config.resend or context.run.tags.get(RESEND_TAG) == "true"
        try:
            report = deliver_day_with_workers(
                store=store,
                repository=event_store.snapshots(),
                ledger=ledger,
                integration=integration,
                day=day,
                resend=resend,
                worker=f"{integration.name}-{context.run.run_id[:8]}",
                progress=_progress_logger(context, count_selected(store, integration, day)),
            )
        except (IntegrationStopped, IntegrationConfigError) as error:
            # A refused key or bad exchange rates: retrying the step cannot mend either.
            raise dg.Failure(description=str(error), allow_retries=False) from None
        context.log.info(
            f"{integration.name} {day}: {report.accepted} accepted, {report.rejected} rejected, "
            f"{report.skipped} skipped, {report.already_done} already sent, "
            f"{report.attribute_updates} attribute updates in {report.duration_seconds:.1f}s"
        )
        if report.reasons:
            context.log.info(
                f"{integration.name} {day} reasons: {describe_reasons(report.reasons)}"
            )
        return dg.MaterializeResult(
            metadata=report_metadata(report),
            check_results=[_outcome_check(ledger.status_counts(integration.name, day), report)],
        )

    return deliveries
