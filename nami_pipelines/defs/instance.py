"""The Dagster instance scripted runs record in: the one `scripts/dev ui` opens, so runs of the
command line show in the UI and the daemon's sensors (the failure sensor) see them."""

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef

from nami_pipelines.settings import PROJECT_ROOT, data_dir

INSTANCE_FILE = "dagster.yaml"


def _absolute_base_dirs(section: Any, home: Path) -> Any:
    """A config section with every relative `base_dir` made relative to `home`."""
    if isinstance(section, dict):
        return {
            key: (
                str(home / value)
                if key == "base_dir" and isinstance(value, str) and not Path(value).is_absolute()
                else _absolute_base_dirs(value, home)
            )
            for key, value in section.items()
        }
    return section


def instance_at(home: Path) -> dg.DagsterInstance:
    """The instance of `home/dagster.yaml`, its relative paths taken from `home` as
    `scripts/dev ui` does (it runs Dagster there), whatever this process's working folder."""
    config = yaml.safe_load((home / INSTANCE_FILE).read_text()) or {}
    overrides = {key: _absolute_base_dirs(value, home) for key, value in config.items()}
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))


@contextmanager
def _one_process_at_a_time(home: Path) -> Iterator[None]:
    """Two commands opening a new SQLite instance at once both create its tables, and one fails
    (`table alembic_version already exists`); a lock per instance folder lets one go first."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"nami-dagster-instance-{digest}.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _opened(home: Path, open_instance: Callable[[], dg.DagsterInstance]) -> dg.DagsterInstance:
    with _one_process_at_a_time(home):
        instance = open_instance()
        instance.get_runs(limit=1)  # creates the storage's tables now, under the lock
        return instance


def dagster_instance() -> dg.DagsterInstance:
    """`DAGSTER_HOME` when set (as Dagster's own tools read it); else the repository root's
    `dagster.yaml`, which is what `scripts/dev ui` uses; else (an installed package, with no
    repository) a lasting instance in the data folder."""
    configured = os.environ.get("DAGSTER_HOME")
    if configured:
        return _opened(Path(configured), dg.DagsterInstance.get)
    if (PROJECT_ROOT / INSTANCE_FILE).is_file():
        return _opened(PROJECT_ROOT, lambda: instance_at(PROJECT_ROOT))
    home = data_dir() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    return _opened(home, lambda: dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))))
