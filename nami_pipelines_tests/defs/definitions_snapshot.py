"""What the UI shows of a set of definitions, as plain data in a stable order: asset keys,
groups, kinds, partitions, dependencies, pools and descriptions, checks, jobs, schedules and
sensors with their default status. Compared with a committed file, a change to the UI is a
diff a reviewer reads."""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

STATUS = {
    dg.DefaultSensorStatus.RUNNING: "on",
    dg.DefaultSensorStatus.STOPPED: "off",
    dg.DefaultScheduleStatus.RUNNING: "on",
    dg.DefaultScheduleStatus.STOPPED: "off",
}


def _partitions(partitions: dg.PartitionsDefinition | None) -> str | None:
    if partitions is None:
        return None
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return (
            f"{partitions.cron_schedule} from {partitions.start.date().isoformat()} "
            f"({partitions.timezone}, end offset {partitions.end_offset})"
        )
    return type(partitions).__name__


def _checks(graph: Any, key: dg.AssetKey) -> dict[str, str | None]:
    return {
        check.name: graph.get(check).description
        for check in sorted(graph.get_check_keys_for_assets({key}), key=lambda c: c.name)
    }


def _assets(repository: dg.RepositoryDefinition) -> dict[str, dict[str, Any]]:
    graph = repository.asset_graph
    assets: dict[str, dict[str, Any]] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": _partitions(node.partitions_def),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "pools": sorted(node.pools or ()),
            "observable": node.is_observable,
            "description": node.description,
            "checks": _checks(graph, key),
        }
    return assets


def _jobs(repository: dg.RepositoryDefinition) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for job in sorted(repository.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        layer = job.asset_layer
        selected_checks = job.asset_check_selection
        if selected_checks is None and layer is not None:
            selected_checks = layer.asset_graph.asset_check_keys
        jobs[job.name] = {
            "executor": job.executor_def.name,
            "assets": sorted(
                k.to_user_string() for k in (layer.selected_asset_keys if layer else ())
            ),
            "checks": sorted(check.to_user_string() for check in selected_checks or ()),
            "ops": sorted(job.graph.node_names())
            if not layer or not layer.selected_asset_keys
            else [],
        }
    return jobs


def _schedules(repository: dg.RepositoryDefinition) -> dict[str, dict[str, Any]]:
    return {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default": STATUS[schedule.default_status],
            "description": schedule.description,
        }
        for schedule in sorted(repository.schedule_defs, key=lambda s: s.name)
    }


def _sensors(repository: dg.RepositoryDefinition) -> dict[str, dict[str, Any]]:
    return {
        sensor.name: {
            "type": type(sensor).__name__,
            "interval_seconds": sensor.minimum_interval_seconds,
            "jobs": sorted(target.job_name for target in sensor.targets),
            "default": STATUS[sensor.default_status],
            "description": sensor.description,
        }
        for sensor in sorted(repository.sensor_defs, key=lambda s: s.name)
    }


def describe_definitions(definitions: dg.Definitions) -> dict[str, Any]:
    repository = definitions.get_repository_def()
    return {
        "assets": _assets(repository),
        "jobs": _jobs(repository),
        "schedules": _schedules(repository),
        "sensors": _sensors(repository),
    }


class _ReadableDumper(yaml.SafeDumper):
    """Multi-line strings (the descriptions) as YAML blocks, so a diff shows the changed line."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _string)


def definitions_yaml(definitions: dg.Definitions) -> str:
    return yaml.dump(
        describe_definitions(definitions), Dumper=_ReadableDumper, sort_keys=False, width=100
    )


EXAMPLE_CREDENTIALS = (
    "MPARTICLE_IOS_KEY",
    "MPARTICLE_IOS_SECRET",
    "MPARTICLE_ANDROID_KEY",
    "MPARTICLE_ANDROID_SECRET",
    "AMPLITUDE_PRODUCTION_API_KEY",
    "AMPLITUDE_EU_API_KEY",
)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILE = ROOT / "integrations.example.yaml"
EXPECTED_FILE = Path(__file__).with_name("expected_definitions.yaml")


def example_environment() -> dict[str, str]:
    """What the code location sees with the example integrations file: placeholder credentials
    (never sent: nothing runs), and neither the automation switch nor another start date."""
    return {
        "NAMI_INTEGRATIONS_FILE": str(EXAMPLE_FILE),
        **{variable: "placeholder-credential" for variable in EXAMPLE_CREDENTIALS},
    }


def example_definitions() -> dg.Definitions:
    """Every definition under `defs/`, loaded as the code location loads them."""
    import nami_pipelines.defs

    return dg.load_from_defs_folder(path_within_project=Path(nami_pipelines.defs.__file__).parent)


if __name__ == "__main__":
    # Rewrites the expected file after an intended change: python -m <this module>
    os.environ.update(example_environment())
    os.environ.pop("NAMI_AUTOMATION", None)
    EXPECTED_FILE.write_text(definitions_yaml(example_definitions()))
    print(f"wrote {EXPECTED_FILE}")
