"""What every command shares: the user-facing error, the store, the configured integrations,
and loading a file with a progress bar (also the demo's first step)."""

import sys
from collections.abc import Sequence
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
    disagree); one line without a traceback, exit 1."""


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
