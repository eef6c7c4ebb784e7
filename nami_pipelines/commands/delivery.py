"""`preview` and `backfill`: a day's request bodies without sending them, and a range of days
sent through Dagster, ending non-zero when any selected event is left without an outcome."""

import argparse
import sys
from collections.abc import Sequence
from datetime import date, timedelta

from nami_pipelines.commands.common import (
    CommandError,
    configured_integrations,
    dagster_failures,
    open_store,
)
from nami_pipelines.config import AnyIntegration, IntegrationConfigError
from nami_pipelines.events.store import EventStore


class DeliveryIncomplete(Exception):
    """Some selected events have no outcome; the lines saying how many, per integration, were
    printed already."""


def command_preview(arguments: argparse.Namespace) -> None:
    from nami_pipelines.delivery.clients import client_for
    from nami_pipelines.delivery.preview import preview_day
    from nami_pipelines.snapshots.repository import SnapshotRepository

    # Nothing is sent, so no credential is needed: keys print as ${VARIABLE}.
    (integration,) = configured_integrations([arguments.integration], check_env=False)
    store = open_store()
    bodies = preview_day(
        store=store,
        repository=SnapshotRepository(store.engine),
        integration=integration,
        client=client_for(integration),
        day=arguments.date,
    )
    try:
        for body in bodies:
            print(body.decode())
    except IntegrationConfigError as error:  # the rates table, read when the preview starts
        raise CommandError(str(error)) from None


def report_unsettled(
    store: EventStore, integrations: Sequence[AnyIntegration], days: Sequence[date]
) -> None:
    """Prints, per integration with selected events of `days` still without an outcome, how
    many and why; raises `DeliveryIncomplete` if there was any."""
    from nami_pipelines.delivery.status import unsettled_in_days

    incomplete = False
    for integration in integrations:
        if not integration.enabled:
            continue
        left = unsettled_in_days(store, integration, days)
        if left.count:
            incomplete = True
            reason = left.top_reason or "not attempted"
            print(
                f"{integration.name}: {left.count} selected events left pending "
                f"(top reason: {reason})",
                file=sys.stderr,
            )
    if incomplete:
        raise DeliveryIncomplete


def _reasons_suffix(metadata: dict) -> str:
    """`; skipped 3: no external id (3)` from a partition's `*_reasons` metadata."""
    from nami_pipelines.delivery.reasons import describe_reasons

    by_status = {
        name.removesuffix("_reasons"): value
        for name, value in metadata.items()
        if name.endswith("_reasons") and isinstance(value, dict)
    }
    described = describe_reasons(by_status)
    return f"; {described}" if described else ""


def command_backfill(arguments: argparse.Namespace) -> None:
    from nami_pipelines.defs.launch import deliver_days

    if arguments.to_date < arguments.from_date:
        raise CommandError("--to is before --from")
    integrations = configured_integrations(arguments.integration)
    span = (arguments.to_date - arguments.from_date).days + 1
    days = [arguments.from_date + timedelta(days=offset) for offset in range(span)]

    def report(day: date, name: str, metadata: dict) -> None:
        print(
            f"{day} {name}: selected {metadata.get('selected', 0)}, "
            f"accepted {metadata.get('accepted', 0)}, rejected {metadata.get('rejected', 0)}, "
            f"skipped {metadata.get('skipped', 0)}, already sent {metadata.get('already_sent', 0)}, "
            f"attribute updates {metadata.get('attribute_updates', 0)}" + _reasons_suffix(metadata),
            flush=True,
        )

    with dagster_failures():
        deliver_days(integrations, days, resend=arguments.resend, on_partition=report)
    report_unsettled(open_store(), integrations, days)
