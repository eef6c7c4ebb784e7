"""What every command shares: the user-facing error, the store, the configured integrations,
and loading a file with a progress bar (also the demo's first step)."""

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from nami_pipelines.config import AnyIntegration
from nami_pipelines.events.loader import LoadSummary, load_ndjson_file
from nami_pipelines.events.store import EventStore
from nami_pipelines.settings import events_db_url


class CommandError(Exception):
    """A problem the user can fix in the input; one line without a traceback, exit 2."""


class CommandFailed(Exception):
    """The input was right but something failed (a destination refused, the emulators
    disagree, a Dagster run failed); one line without a traceback, exit 1. `details` (a failed
    run's own stack trace) is printed after the line under `--debug`."""

    def __init__(self, message: str, *, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


@contextmanager
def dagster_failures() -> Iterator[None]:
    """Failures of the Dagster runs a command starts (defs/launch.py) as the command line's: a
    day outside the daily partitions is bad input, a failed run fails the command with its run
    id. Dagster is imported here, when a command runs it, and not before."""
    from nami_pipelines.defs.launch import DagsterRunFailed, PartitionOutOfRange

    try:
        yield
    except PartitionOutOfRange as error:
        raise CommandError(str(error)) from None
    except DagsterRunFailed as error:
        message = f"{error} (run {error.run_id}; see it in the Dagster UI)"
        raise CommandFailed(message, details=error.details) from None


def open_store() -> EventStore:
    return EventStore(events_db_url())


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise CommandError(f"no such file: {value}")
    return path


def load_file_with_progress(
    path: Path, store: EventStore, *, app_id: str | None = None
) -> LoadSummary:
    """Load a file with a byte-based progress bar on stderr; `app_id` is the app of the lines
    that are Nami's own webhook bodies."""
    with tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=f"loading {path.name}",
        file=sys.stderr,
        disable=None,
    ) as bar:
        return load_ndjson_file(path, store, app_id=app_id, on_bytes=bar.update)


def configured_integrations(
    names: Sequence[str], *, check_env: bool = True
) -> list[AnyIntegration]:
    """The named integrations from the integrations file (`all` for every enabled one).
    `check_env=False` for commands that send nothing and so need no credentials."""
    from nami_pipelines.config import IntegrationConfigError, load_integrations

    try:
        configured = {
            integration.name: integration for integration in load_integrations(check_env=check_env)
        }
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
