"""`check`: the integrations file validated and each destination asked about its credentials."""

import argparse
from pathlib import Path

from nami_pipelines.commands.common import CommandError, CommandFailed
from nami_pipelines.integration_check import check_integrations


def command_check(arguments: argparse.Namespace) -> None:
    """Exit 2 when the file is wrong (bad input), 1 when a destination refused or could not be
    reached (the file is right, the world is not)."""
    lines = []
    for line in check_integrations(Path(arguments.file) if arguments.file else None):
        print(line.text, flush=True)
        lines.append(line)
    configuration = sum(line.failed and line.bad_input for line in lines)
    destinations = sum(line.failed and not line.bad_input for line in lines)
    if configuration:
        raise CommandError(f"{configuration} configuration problem(s) found")
    if destinations:
        raise CommandFailed(f"{destinations} destination(s) did not accept the check")
