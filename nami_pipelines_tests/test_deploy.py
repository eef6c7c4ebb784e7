"""What can be checked offline of the Kubernetes deployment: the files parse, point at the real
code location module, and carry the same per-integration limit as the embedded instance."""

import tomllib
from importlib import import_module
from pathlib import Path

import yaml

from nami_pipelines.defs.delivery.partitions import INTEGRATION_RUN_TAG

ROOT = Path(__file__).resolve().parents[1]


def code_location_module() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return project["tool"]["dagster"]["module_name"]


def test_helm_values_reference_the_code_location_and_limits():
    values = yaml.safe_load((ROOT / "deploy" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    arguments = deployment["dagsterApiGrpcArgs"]
    assert arguments[arguments.index("-m") + 1] == code_location_module()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    (limit,) = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert limit["key"] == INTEGRATION_RUN_TAG and limit["value"]["applyLimitPerUniqueValue"]
    assert values["dagsterDaemon"]["runRetries"]["enabled"]
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"]


def test_dockerfile_serves_the_same_module():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f'"-m", "{code_location_module()}"' in dockerfile
    assert "pip install ." in dockerfile


def test_the_referenced_module_loads_definitions():
    module = import_module(code_location_module())
    assert module.defs.get_repository_def().has_job("user_attribute_snapshots_job")


def test_instances_limit_runs_per_integration_with_the_partition_tag():
    for path in (ROOT / "dagster.yaml", ROOT / "deploy" / "dagster.yaml"):
        instance = yaml.safe_load(path.read_text())
        limits = instance["run_coordinator"]["config"]["tag_concurrency_limits"]
        assert [limit["key"] for limit in limits] == [INTEGRATION_RUN_TAG], path
    production = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    assert production["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert production["run_retries"]["enabled"] and production["run_monitoring"]["enabled"]
