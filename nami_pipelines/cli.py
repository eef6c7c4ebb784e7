"""`nami-pipelines`: set-up, trying things, scripting and debugging.

Every command prints a one-line error and exits non-zero on bad input; nothing here holds logic
of its own beyond parsing arguments and printing.
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

from tqdm import tqdm

from nami_pipelines.events.loader import LoadSummary, load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.samples import PRODUCTION_APP_ID, write_events_ndjson
from nami_pipelines.samples.native_bodies import write_nami_bodies_ndjson
from nami_pipelines.settings import events_db_url
from nami_pipelines.snapshots.compute import snapshot_from_store

EXIT_BAD_INPUT = 2


class CommandError(Exception):
    """A problem the user can fix; printed as one line without a traceback."""


def _open_store() -> EventStore:
    return EventStore(events_db_url())


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise CommandError(f"no such file: {value}")
    return path


def load_file_with_progress(
    path: Path, store: EventStore, *, app_id: str | None = None
) -> LoadSummary:
    """Load a file with a byte-based progress bar on stderr."""
    with tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=f"loading {path.name}",
        file=sys.stderr,
        disable=None,
    ) as bar:
        return load_ndjson_file(path, store, app_id=app_id, on_bytes=bar.update)


def command_load(arguments: argparse.Namespace) -> None:
    path = _existing_file(arguments.file)
    summary = load_file_with_progress(path, _open_store(), app_id=arguments.app_id)
    print(summary.describe())
    for line in summary.reason_lines():
        print(line)
    if summary.usable == 0:
        reasons = summary.quarantined_by_reason
        top = f" (top reason: {max(reasons, key=reasons.__getitem__)})" if reasons else ""
        raise CommandError(f"no usable line in {path}{top}")


def command_generate(arguments: argparse.Namespace) -> None:
    if arguments.users < 1 or arguments.days < 1:
        raise CommandError("--users and --days must be at least 1")
    out = Path(arguments.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if arguments.format == "nami":
        count = write_nami_bodies_ndjson(
            out,
            users=arguments.users,
            days=arguments.days,
            start=arguments.start,
            seed=arguments.seed,
            app_id=arguments.app_id,
        )
        print(f"wrote {count} Nami webhook bodies of app {arguments.app_id} to {out}")
        return
    count = write_events_ndjson(
        out,
        users=arguments.users,
        days=arguments.days,
        start=arguments.start,
        seed=arguments.seed,
        show_progress=True,
    )
    print(f"wrote {count} events for {arguments.users} users to {out}")


def command_snapshot(arguments: argparse.Namespace) -> None:
    try:
        snapshot = snapshot_from_store(_open_store(), arguments.at)
    except ValueError as error:
        raise CommandError(f"--at: {error}") from None
    for record in snapshot.to_dict("records"):
        print(json.dumps(record))


def _integrations(names: Sequence[str]) -> list:
    """The named integrations from the integrations file (`all` for every enabled one)."""
    from nami_pipelines.config import IntegrationConfigError, load_integrations

    try:
        configured = {integration.name: integration for integration in load_integrations()}
    except IntegrationConfigError as error:
        raise CommandError(str(error)) from None
    if not configured:
        raise CommandError("no integrations configured (set NAMI_INTEGRATIONS_FILE)")
    if list(names) == ["all"]:
        return [integration for integration in configured.values() if integration.enabled]
    unknown = [name for name in names if name not in configured]
    if unknown:
        raise CommandError(
            f"unknown integration(s) {', '.join(unknown)}; configured: {', '.join(configured)}"
        )
    return [configured[name] for name in names]


def command_preview(arguments: argparse.Namespace) -> None:
    from nami_pipelines.delivery.clients import client_for
    from nami_pipelines.delivery.preview import preview_day
    from nami_pipelines.snapshots.repository import SnapshotRepository

    (integration,) = _integrations([arguments.integration])
    store = _open_store()
    for body in preview_day(
        store=store,
        repository=SnapshotRepository(store.engine),
        integration=integration,
        client=client_for(integration),
        day=arguments.date,
    ):
        print(body.decode())


def command_backfill(arguments: argparse.Namespace) -> None:
    from nami_pipelines.defs.delivery.backfill import backfill_deliveries
    from nami_pipelines.demo import dagster_instance

    if arguments.to_date < arguments.from_date:
        raise CommandError("--to is before --from")
    integrations = _integrations(arguments.integration)
    span = (arguments.to_date - arguments.from_date).days + 1
    days = [arguments.from_date + timedelta(days=offset) for offset in range(span)]

    def report(day: date, name: str, metadata: dict) -> None:
        print(
            f"{day} {name}: selected {metadata.get('selected', 0)}, "
            f"accepted {metadata.get('accepted', 0)}, rejected {metadata.get('rejected', 0)}, "
            f"skipped {metadata.get('skipped', 0)}, already sent {metadata.get('already_sent', 0)}, "
            f"attribute updates {metadata.get('attribute_updates', 0)}",
            flush=True,
        )

    try:
        backfill_deliveries(
            integrations,
            days,
            instance=dagster_instance(),
            resend=arguments.resend,
            on_partition=report,
        )
    except RuntimeError as error:
        raise CommandError(f"{error} (see the run in the Dagster UI)") from None


def command_check(arguments: argparse.Namespace) -> None:
    from nami_pipelines.integration_check import check_integrations

    failures = 0
    for line in check_integrations(Path(arguments.file) if arguments.file else None):
        print(line.text, flush=True)
        failures += line.failed
    if failures:
        raise CommandError(f"{failures} problem(s) found")


def command_emulate(arguments: argparse.Namespace) -> None:
    from nami_pipelines.emulators.server import serve

    print(f"emulators listening on http://{arguments.host}:{arguments.port}", flush=True)
    serve(arguments.host, arguments.port)


def command_receive(arguments: argparse.Namespace) -> None:
    import logging

    from sqlalchemy.exc import SQLAlchemyError

    from nami_pipelines.config import integrations_file_path
    from nami_pipelines.receiver.apps import WebhookConfigError, load_webhook_apps
    from nami_pipelines.receiver.server import serve_receiver, warn_unsigned

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        apps = load_webhook_apps(integrations_file_path())
    except WebhookConfigError as error:
        raise CommandError(str(error)) from None
    warn_unsigned(apps)
    print(
        f"receiving webhooks for {len(apps)} app(s) on "
        f"http://{arguments.host}:{arguments.port}/webhooks/nami/<app_id>",
        flush=True,
    )
    try:
        store = _open_store()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or type(error).__name__).splitlines()[0]
        raise CommandError(f"the event database is unavailable: {reason}") from None
    serve_receiver(arguments.host, arguments.port, store, apps)


def command_demo(arguments: argparse.Namespace) -> None:
    from nami_pipelines.demo import run_demo

    if not run_demo(users=arguments.users, days=arguments.days, seed=arguments.seed):
        raise CommandError("the emulators did not record exactly the accepted events")


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nami-pipelines",
        description="Nami ML events to mParticle and Amplitude. Database: NAMI_EVENTS_DB_URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_text: str):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    load = add("load", command_load, "load an NDJSON file of Nami events into the event table")
    load.add_argument("file")
    load.add_argument(
        "--app-id",
        help="the Nami app of lines that are Nami's own webhook bodies (told apart per line)",
    )

    generate = add("generate", command_generate, "write realistic sample events as NDJSON")
    generate.add_argument("--users", type=int, required=True)
    generate.add_argument("--days", type=int, required=True)
    generate.add_argument("--start", type=_iso_date, required=True)
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--out", required=True)
    generate.add_argument(
        "--format",
        choices=["envelope", "nami"],
        default="envelope",
        help="envelope: the event table's lines; nami: Nami's webhook bodies of one app",
    )
    generate.add_argument(
        "--app-id", default=PRODUCTION_APP_ID, help="with --format nami: the app written"
    )

    snapshot = add("snapshot", command_snapshot, "print every user's namiml_* attributes at --at")
    snapshot.add_argument("--at", required=True, help="ISO 8601 instant with a UTC offset")

    preview = add(
        "preview",
        command_preview,
        "print the request bodies delivery would send for a day (sends and writes nothing; "
        "API keys shown as ${VARIABLE})",
    )
    preview.add_argument("--integration", required=True)
    preview.add_argument("--date", type=_iso_date, required=True)

    backfill = add(
        "backfill",
        command_backfill,
        "deliver a range of days to integrations through Dagster (runs show in the UI)",
    )
    backfill.add_argument(
        "--integration", nargs="+", required=True, help="integration names, or: all"
    )
    backfill.add_argument("--from", dest="from_date", type=_iso_date, required=True)
    backfill.add_argument("--to", dest="to_date", type=_iso_date, required=True)
    backfill.add_argument(
        "--resend", action="store_true", help="send again events already accepted"
    )

    check = add(
        "check",
        command_check,
        "validate the integrations file and ask each destination whether it accepts the "
        "credentials (sends no event)",
    )
    check.add_argument("--file", help="integrations YAML (default: NAMI_INTEGRATIONS_FILE)")

    emulate = add("emulate", command_emulate, "run the local mParticle and Amplitude emulators")
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=8765)

    receive = add(
        "receive",
        command_receive,
        "run the Nami webhook receiver (apps from the integrations file's webhooks: list)",
    )
    receive.add_argument("--host", default="127.0.0.1")
    receive.add_argument("--port", type=int, default=8080)

    demo = add("demo", command_demo, "the embedded end-to-end run on sample data")
    demo.add_argument("--users", type=int, default=500)
    demo.add_argument("--days", type=int, default=7)
    demo.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        arguments.handler(arguments)
    except CommandError as error:
        print(f"nami-pipelines {arguments.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
