"""Where things live by default; every default can be overridden from the environment."""

import os
from pathlib import Path

EVENTS_DB_URL_VARIABLE = "NAMI_EVENTS_DB_URL"
INTEGRATIONS_FILE_VARIABLE = "NAMI_INTEGRATIONS_FILE"
DATA_DIR_VARIABLE = "NAMI_DATA_DIR"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The project's data folder: `NAMI_DATA_DIR`, else `data/` beside the package."""
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return Path(configured) if configured else PROJECT_ROOT / "data"


def events_db_url() -> str:
    """The event store: `NAMI_EVENTS_DB_URL`, else an embedded SQLite file in the data folder."""
    configured = os.environ.get(EVENTS_DB_URL_VARIABLE)
    if configured:
        return configured
    return f"sqlite:///{data_dir() / 'nami_events.sqlite'}"


LEASE_SECONDS_VARIABLE = "NAMI_DELIVERY_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 600


def delivery_lease_seconds() -> float:
    """How long a delivery run holds the events it claimed before another run may take them
    (after a crash, its events wait this long). Longer than a run's worst retry sequence."""
    return float(os.environ.get(LEASE_SECONDS_VARIABLE, DEFAULT_LEASE_SECONDS))
