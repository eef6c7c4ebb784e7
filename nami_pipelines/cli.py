"""`nami-pipelines`: set-up, trying things, scripting and debugging.

Every command ends a failure in one line and a non-zero exit (2 for bad input, 1 when something
failed or was left undelivered), with the stack trace only under `--debug`. Nothing here holds
logic of its own beyond parsing arguments and printing; the bigger commands live in `commands/`.
"""

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import date
from typing import NoReturn

from nami_pipelines.commands.check import command_check
from nami_pipelines.commands.common import (
    CommandError,
    CommandFailed,
    dagster_failures,
    open_store,
)
from nami_pipelines.commands.delivery import (
    DeliveryIncomplete,
    command_backfill,
    command_preview,
)
from nami_pipelines.commands.events import command_generate, command_load
from nami_pipelines.commands.receive import command_receive
from nami_pipelines.commands.status import command_status
from nami_pipelines.samples import PRODUCTION_APP_ID
from nami_pipelines.snapshots.compute import snapshot_from_store

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def command_snapshot(arguments: argparse.Namespace) -> None:
    try:
        snapshot = snapshot_from_store(open_store(), arguments.at)
    except ValueError as error:
        raise CommandError(f"--at: {error}") from None
    for record in snapshot.to_dict("records"):
        print(json.dumps(record))


def command_emulate(arguments: argparse.Namespace) -> None:
    from nami_pipelines.emulators.server import serve

    print(f"emulators listening on http://{arguments.host}:{arguments.port}", flush=True)
    serve(arguments.host, arguments.port)


def command_demo(arguments: argparse.Namespace) -> None:
    from nami_pipelines.demo import run_demo

    with dagster_failures():
        agreed = run_demo(users=arguments.users, days=arguments.days, seed=arguments.seed)
    if not agreed:
        raise CommandFailed("the emulators did not record exactly the accepted events")


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end in one line too (argparse prints the usage block, then the error)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="nami-pipelines",
        description="Nami ML events to mParticle and Amplitude. Database: NAMI_EVENTS_DB_URL.",
    )
    debug_help = "on failure, print the stack trace after the one-line error"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    # Accepted after the command too; SUPPRESS keeps a global --debug from being reset.
    common = OneLineParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_text: str):
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
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

    status = add(
        "status",
        command_status,
        "per integration: days delivered, counts, top reasons, the oldest pending event; "
        "quarantined rows by reason",
    )
    status.add_argument("--json", action="store_true", help="one JSON document, for scripts")

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


def _fail(command: str, message: str) -> None:
    """The one line: a message that spans lines (a database error's) is joined into one."""
    print(f"nami-pipelines {command}: {' '.join(message.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command. Every failure ends in one line on stderr and a non-zero exit; with
    `--debug`, the stack trace (for a failed Dagster run, the run's own) follows it. Only the
    commands that run Dagster (backfill, demo) load it."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    debug = getattr(arguments, "debug", False)
    try:
        arguments.handler(arguments)
    except CommandError as error:
        _fail(arguments.command, str(error))
        return EXIT_BAD_INPUT
    except CommandFailed as error:
        _fail(arguments.command, str(error))
        if debug and error.details:
            print(error.details, file=sys.stderr)
        return EXIT_FAILED
    except DeliveryIncomplete:
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        _fail(arguments.command, f"{type(error).__name__}: {error}")
        if debug:
            traceback.print_exc()
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
