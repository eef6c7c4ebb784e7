"""The Dagster instance scripted runs record in: the one `scripts/dev ui` opens, so runs of the
command line show in the UI and the daemon's sensors (the failure sensor) see them."""

import os
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


def dagster_instance() -> dg.DagsterInstance:
    """`DAGSTER_HOME` when set (as Dagster's own tools read it); else the repository root's
    `dagster.yaml`, which is what `scripts/dev ui` uses; else (an installed package, with no
    repository) a lasting instance in the data folder."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    if (PROJECT_ROOT / INSTANCE_FILE).is_file():
        return instance_at(PROJECT_ROOT)
    home = data_dir() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
