"""`check`: the integrations file validated and each destination asked about its credentials."""

import argparse
from pathlib import Path

from nami_pipelines.commands.common import CommandError
from nami_pipelines.integration_check import check_integrations


def command_check(arguments: argparse.Namespace) -> None:
    failures = 0
    for line in check_integrations(Path(arguments.file) if arguments.file else None):
        print(line.text, flush=True)
        failures += line.failed
    if failures:
        raise CommandError(f"{failures} problem(s) found")
