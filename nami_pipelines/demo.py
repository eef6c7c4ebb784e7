"""The embedded end-to-end run: sample events posted as Nami's signed webhooks to a receiver
started for the demo, local emulators as destinations, snapshots and deliveries through Dagster,
and a summary that counts what the receiver took and checks the emulators agree.

The Dagster runs go through `defs/launch.py`, the command line's one way into Dagster."""

import os
import time
from datetime import UTC, datetime, timedelta

from nami_pipelines.commands.common import CommandError
from nami_pipelines.commands.delivery import report_unsettled
from nami_pipelines.config import parse_integrations
from nami_pipelines.defs.launch import check_days_in_partitions, deliver_days, snapshot_days
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines.delivery.reasons import STATUS_ORDER, top_reasons
from nami_pipelines.demo_files import (
    DEFAULT_DEMO_PORT,
    DEMO_PORT_VARIABLE,
    DEMO_SECRETS,
    DEMO_WEBHOOK_SECRET_VARIABLE,
    DemoFiles,
    demo_emulator_settings,
    demo_folder,
    emulator_on_port,
)
from nami_pipelines.demo_webhooks import (
    FATES,
    NOT_ACKNOWLEDGED,
    SENDERS,
    SignedWebhook,
    WebhookTally,
    generated_webhooks,
    post_with_progress,
    receiver_process,
    webhook_entries,
)
from nami_pipelines.destinations.outcomes import ACCEPTED
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID, STAGING_APP_ID
from nami_pipelines.settings import events_db_url

# The sample journeys' apps: each gets its own webhook URL, as in the Nami Control Center.
DEMO_APPS = (PRODUCTION_APP_ID, STAGING_APP_ID)


def demo_integrations_document(base_url: str) -> dict:
    """An iOS and an Android mParticle feed and one Amplitude project, all on the emulators, and
    the webhooks of both sample apps, signed with the demo's secret."""
    return {
        "webhooks": webhook_entries(DEMO_APPS, DEMO_WEBHOOK_SECRET_VARIABLE),
        "integrations": [
            {
                "name": "demo_ios_feed",
                "type": "mparticle",
                "app_id": PRODUCTION_APP_ID,
                "platform": "apple",
                "base_url": base_url,
                "credentials": {"key_env": "DEMO_IOS_KEY", "secret_env": "DEMO_IOS_SECRET"},
                "customer_id": "external_id",
                "fallback_to_nami_user_id": True,
            },
            {
                "name": "demo_android_feed",
                "type": "mparticle",
                "app_id": PRODUCTION_APP_ID,
                "platform": "google",
                "base_url": base_url,
                "credentials": {
                    "key_env": "DEMO_ANDROID_KEY",
                    "secret_env": "DEMO_ANDROID_SECRET",
                },
                "customer_id": "external_id",
            },
            {
                "name": "demo_amplitude",
                "type": "amplitude",
                "app_id": PRODUCTION_APP_ID,
                "endpoint": base_url,
                "credentials": {"api_key_env": "DEMO_AMPLITUDE_API_KEY"},
                "user_id": "external_id",
                "fallback_to_nami_user_id": True,
            },
        ],
    }


def _table(rows: list[dict], columns: tuple[str, ...], text: tuple[str, ...] = ()) -> str:
    """Numbers right-aligned, the `text` columns left-aligned."""
    widths = {c: max(len(c), *(len(str(row.get(c, ""))) for row in rows)) for c in columns}

    def line(values: dict) -> str:
        cells = [
            str(values.get(c, "")).ljust(widths[c])
            if c in text
            else str(values.get(c, "")).rjust(widths[c])
            for c in columns
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line({c: c for c in columns}), *(line(row) for row in rows)])


def reason_rows(totals: dict[str, dict]) -> list[dict]:
    """One row per (integration, status, reason) of this run, the most frequent first."""
    return [
        {"integration": name, "status": status, "events": count, "reason": reason}
        for name, total in totals.items()
        for status in STATUS_ORDER
        for reason, count in top_reasons(total.get(f"{status}_reasons") or {}, limit=10)
    ]


def receive_webhooks(files: DemoFiles, webhooks: list[SignedWebhook]) -> WebhookTally:
    """Starts `nami-pipelines receive` on the demo's integrations file and posts every webhook
    to it; fails in one line when any webhook was not acknowledged."""
    log = files.folder / "receiver.log"
    with receiver_process(files.integrations, {"NAMI_EVENTS_DB_URL": events_db_url()}, log) as url:
        print(f"receiver: {url}/webhooks/nami/<app_id> (log in {log})")
        started = time.monotonic()
        tally = post_with_progress(url, webhooks)
        seconds = time.monotonic() - started
    print(f"webhooks: {tally.describe()} ({len(webhooks) / seconds:,.0f}/s from {SENDERS} senders)")
    if tally.failures:
        reason, count = tally.failures.most_common(1)[0]
        total = sum(tally.failures.values())
        raise CommandError(f"{total} webhooks were not acknowledged ({count}: {reason}); see {log}")
    return tally


def run_demo(*, users: int, days: int, seed: int) -> bool:
    """Returns True when every integration's accepted events match what its emulator recorded."""
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days)
    day_list = [start + timedelta(days=n) for n in range(days)]
    check_days_in_partitions(day_list)
    folder = demo_folder()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"event store: {events_db_url().split('@')[-1]}")
    secret = DEMO_SECRETS[DEMO_WEBHOOK_SECRET_VARIABLE]
    webhooks = generated_webhooks(users=users, days=days, start=start, seed=seed, secret=secret)
    print(
        f"generated {len(webhooks)} events for {users} users, {start} .. "
        f"{today - timedelta(days=1)}, as Nami's signed webhook bodies"
    )
    store = EventStore(events_db_url())
    os.environ.update(DEMO_SECRETS)
    settings = demo_emulator_settings()
    port = int(os.environ.get(DEMO_PORT_VARIABLE, DEFAULT_DEMO_PORT))
    with emulator_on_port(settings, port) as emulator:
        emulator.reset()
        document = demo_integrations_document(emulator.url)
        files = DemoFiles(folder)
        files.write(document, int(emulator.url.rsplit(":", 1)[1]), settings)
        integrations = parse_integrations(document)
        print(f"emulators: {emulator.url} (integrations in {files.integrations})")
        tally = receive_webhooks(files, webhooks)
        snapshots = snapshot_days(day_list)
        totals = deliver_days(integrations, day_list)
        stats = emulator.stats()
    print("\nwebhooks (this run; a body already stored is a duplicate)")
    columns = ("app_id", "posted", *FATES, NOT_ACKNOWLEDGED)
    print(_table(tally.rows(), columns, text=("app_id",)))
    print("\nsnapshots")
    print(
        _table(
            snapshots,
            (
                "day",
                "users",
                "active_subscribers",
                "in_trial",
                "in_grace_period",
                "former_subscribers",
                "day_events",
                "mode",
            ),
        )
    )
    ledger = DeliveryLedger(store.engine)
    rows, agreed = [], True
    for integration in integrations:
        total = totals[integration.name]
        if integration.type == "mparticle":
            key = os.environ[integration.credentials.key_env]
            recorded = stats["mparticle"]["per_credential"].get(key, {}).get("unique_events", 0)
        else:
            key = os.environ[integration.credentials.api_key_env]
            recorded = stats["amplitude"]["per_credential"].get(key, {}).get("unique_events", 0)
        in_ledger = sum(1 for row in ledger.entries(integration.name) if row["status"] == ACCEPTED)
        agreed &= recorded == total.get("accepted", 0)
        rows.append(
            {
                "integration": integration.name,
                "selected": total.get("selected", 0),
                "accepted": total.get("accepted", 0),
                "rejected": total.get("rejected", 0),
                "skipped": total.get("skipped", 0),
                "already_sent": total.get("already_sent", 0),
                "attribute_updates": total.get("attribute_updates", 0),
                "emulator_recorded": recorded,
                "accepted_all_runs": in_ledger,
            }
        )
    print("\ndeliveries (this run; the emulators are new each run)")
    print(
        _table(
            rows,
            (
                "integration",
                "selected",
                "accepted",
                "rejected",
                "skipped",
                "already_sent",
                "attribute_updates",
                "emulator_recorded",
                "accepted_all_runs",
            ),
        )
    )
    reasons = reason_rows(totals)
    if reasons:
        print("\nwhy events were not accepted (this run)")
        print(_table(reasons, ("integration", "status", "events", "reason"), text=("reason",)))
    print(
        "\naccepted events and emulator records agree"
        if agreed
        else "\nMISMATCH between accepted events and emulator records"
    )
    print(
        f"\nopen the UI on these integrations and a running emulator: scripts/dev ui"
        f" (the keys the emulator accepts are in {files.environment})"
    )
    report_unsettled(store, integrations, day_list)
    return agreed
