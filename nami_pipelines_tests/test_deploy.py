"""What can be checked offline of the Kubernetes deployment: the files parse, point at the real
code location module, and carry the same per-integration limit as the embedded instance; the
webhook receiver runs from the chart's image, with its Secret and ConfigMap, the real `receive`
command and a probe that command serves."""

import ast
import hmac
import json
import os
import re
import shutil
import sys
import tomllib
from importlib import import_module
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import requests
import yaml

from nami_pipelines.cli import build_parser
from nami_pipelines.commands.receive import command_receive
from nami_pipelines.config import load_integrations
from nami_pipelines.defs.delivery.assets import build_delivery_asset
from nami_pipelines.defs.instance import instance_at
from nami_pipelines.events.store import EventStore
from nami_pipelines_tests.production.manifests import (
    INGRESS_EXAMPLE,
    RECEIVER_MANIFEST,
    local_receiver_command,
    manifests,
    receiver_container,
    receiver_deployment,
)
from nami_pipelines_tests.production.processes import (
    ManagedProcess,
    answers_ok,
    free_port,
    wait_until,
)

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
    # The chart renders `concurrency:` into the instance: at most 2 days per integration's pool.
    assert values["concurrency"]["pools"] == {"defaultLimit": 2, "granularity": "op"}
    assert "config" not in coordinator  # the chart refuses limits set in both places
    # The one switch: the production set of schedules and sensors starts with the code location.
    assert {"name": "NAMI_AUTOMATION", "value": "on"} in deployment["env"]
    assert values["dagsterDaemon"]["runRetries"]["enabled"]
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"]


def test_dockerfile_serves_the_same_module():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f'"-m", "{code_location_module()}"' in dockerfile
    assert "pip install ." in dockerfile


def test_the_referenced_module_loads_definitions():
    module = import_module(code_location_module())
    assert module.defs.get_repository_def().has_job("user_attribute_snapshots_job")


def test_instances_limit_each_integrations_pool_to_two(tmp_path):
    for path in (ROOT / "dagster.yaml", ROOT / "deploy" / "dagster.yaml"):
        instance = yaml.safe_load(path.read_text())
        assert "run_coordinator" not in instance, path  # `concurrency:` replaces its limits
        assert instance["concurrency"]["pools"] == {"default_limit": 2, "granularity": "op"}, path
    # Dagster itself reads the root file that way (the deploy file needs its PostgreSQL).
    shutil.copyfile(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    local = instance_at(tmp_path)
    assert local.global_op_concurrency_default_limit == 2
    assert local.get_concurrency_config().run_queue_config.max_concurrent_runs == 8
    ios_feed = load_integrations(ROOT / "integrations.example.yaml", check_env=False)[0]
    assert build_delivery_asset(ios_feed).op.pools == {"deliveries/ios_feed"}
    production = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    assert production["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert production["run_retries"]["enabled"] and production["run_monitoring"]["enabled"]
    # Step failures (a stopped integration among them) are not re-run as whole runs.
    assert production["run_retries"]["retry_on_asset_or_op_failure"] is False


# The receiver beside the chart (deploy/receiver.yaml, deploy/receiver-ingress.example.yaml).

# What Nami's bodies may weigh at most (docs/input.md): the receiver answers 413 above it.
ONE_MEGABYTE = 1024 * 1024
NGINX_SIZE_UNITS = {"k": 1024, "m": 1024 * 1024}
WEBHOOK_SECRET = "whsec-deploy-test-51c0"
APP_ID = "3c1e9a7b-0d52-4f6e-8a14-c2b7d9e0f316"
START_SECONDS = 30.0
# A renewal in the shape Nami's docs show (docs/input.md).
RENEWAL_BODY = {
    "id": "9b2f6c1e-4d7a-4e35-b8f0-1a6c3d5e7f90",
    "event_type": "user.subscription.renewed",
    "created_date": "2026-02-01T10:00:00Z",
    "user_id": "b7e3a1c9-5f2d-4c8e-9a06-3d1f7b2e4c58",
    "event_platform": "apple",
    "external_ids": [{"key": "external_id", "type": "uuid", "value": "customer-4410"}],
    "devices": [
        {
            "id": "6a0d2e4f-1b3c-4d5e-8f7a-9b0c1d2e3f4a",
            "platform": {"id": "0e5c7a91-2b4d-4f6e-a8c0-3d5f7b9e1a2c", "platform_type": "apple"},
        }
    ],
    "active_entitlements": [{"entitlement_ref_id": "premium", "sku_ref_id": "premium_monthly"}],
    "customer_journey_state": {"in_trial_period": False, "is_cancelled": False},
}


def chart_user_deployment() -> dict[str, Any]:
    values = yaml.safe_load((ROOT / "deploy" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def named_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return number


def test_receiver_runs_from_the_charts_image_with_its_secret_and_config():
    chart = chart_user_deployment()
    deployment = receiver_deployment()
    pod = deployment["spec"]["template"]["spec"]
    container = receiver_container(deployment)
    assert container["image"] == f"{chart['image']['repository']}:{chart['image']['tag']}"
    assert [source["secretRef"]["name"] for source in container["envFrom"]] == [
        secret["name"] for secret in chart["envSecrets"]
    ]
    # NAMI_INTEGRATIONS_FILE, at the same path; the automation switch is the code location's.
    assert container["env"] == [e for e in chart["env"] if e["name"] != "NAMI_AUTOMATION"]
    assert [volume["configMap"]["name"] for volume in pod["volumes"] if "configMap" in volume] == [
        volume["configMap"]["name"] for volume in chart["volumes"]
    ]
    assert chart["volumeMounts"][0] in container["volumeMounts"]
    # Stateless, committing to PostgreSQL: more than one replica, none lost during a rollout.
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # Not root: the image's own user (deploy/Dockerfile), nothing to escalate to.
    dockerfile_uid = int(re.search(r"--uid (\d+)", (ROOT / "deploy" / "Dockerfile").read_text())[1])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_uid
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]


def test_receiver_container_runs_the_receive_command_the_cli_accepts():
    deployment = receiver_deployment()
    container = receiver_container(deployment)
    executable, *arguments = container["command"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"][executable] == "nami_pipelines.cli:main"
    parsed = build_parser().parse_args(arguments)
    assert parsed.handler is command_receive
    assert parsed.host == "0.0.0.0"
    assert parsed.port == 8080 == named_port(container, "http")
    for probe, path in (("readinessProbe", "/healthz"), ("livenessProbe", "/livez")):
        check = container[probe]["httpGet"]
        assert check["path"] == path, probe
        assert named_port(container, check["port"]) == parsed.port, probe
    service = manifests(RECEIVER_MANIFEST)["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80 and named_port(container, port["targetPort"]) == parsed.port
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    budget = manifests(RECEIVER_MANIFEST)["PodDisruptionBudget"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_image_installs_what_the_receiver_imports():
    """The image runs `pip install .` (no extras): every third-party module the receiver and
    its command import must come from a runtime dependency, not a dev one."""
    sources = [*(ROOT / "nami_pipelines" / "receiver").glob("*.py")]
    sources.append(ROOT / "nami_pipelines" / "commands" / "receive.py")
    imported: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"nami_pipelines"}
    assert {"starlette", "uvicorn", "sqlalchemy"} <= third_party  # the scan finds imports
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_distribution_name(requirement) for requirement in project["dependencies"]}
    distributions = packages_distributions()
    for module in sorted(third_party):
        names = {_distribution_name(name) for name in distributions[module]}
        assert names & runtime, f"{module} ({names}) is not a runtime dependency"


def _distribution_name(requirement: str) -> str:
    """`uvicorn[standard]>=0.30,<1` -> `uvicorn`; `PyYAML` -> `pyyaml` (PEP 503, roughly)."""
    name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_ingress_example_terminates_tls_and_passes_the_bodies_the_receiver_takes():
    ingress = manifests(INGRESS_EXAMPLE)["Ingress"]
    service = manifests(RECEIVER_MANIFEST)["Service"]
    size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(size[:-1]) * NGINX_SIZE_UNITS[size[-1]] == ONE_MEGABYTE
    (rule,) = ingress["spec"]["rules"]
    (tls,) = ingress["spec"]["tls"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/webhooks/nami/" and path["pathType"] == "Prefix"
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] == service["spec"]["ports"][0]["name"]


def test_the_manifests_command_serves_its_probe_and_the_ingress_path(tmp_path: Path):
    """The container's command as the manifest spells it (on a free local port instead of
    0.0.0.0:8080): the probes' path answers 200, and a signed body posted under the Ingress's
    path prefix is stored."""
    container = receiver_container()
    port = free_port()
    integrations = tmp_path / "integrations.yaml"
    integrations.write_text(yaml.safe_dump({"webhooks": [{"app_id": APP_ID}]}))
    environment = {
        **os.environ,
        "NAMI_EVENTS_DB_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "NAMI_INTEGRATIONS_FILE": str(integrations),
        "NAMI_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "receiver.log"
    receiver = ManagedProcess(
        "receiver",
        local_receiver_command(port),
        cwd=tmp_path,
        env=environment,
        log_path=log,
    )
    try:
        probe = container["readinessProbe"]["httpGet"]["path"]

        def started() -> bool:
            assert receiver.running(), f"the receiver exited:\n{log.read_text()}"
            return answers_ok(f"{url}{probe}")

        wait_until(started, timeout=START_SECONDS, what=f"GET {probe}", explain=log.read_text)
        health = requests.get(f"{url}{probe}", timeout=10)
        assert (health.status_code, health.json()["status"]) == (200, "ok")
        liveness = container["livenessProbe"]["httpGet"]["path"]
        alive = requests.get(f"{url}{liveness}", timeout=10)
        assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
        (rule,) = manifests(INGRESS_EXAMPLE)["Ingress"]["spec"]["rules"]
        (public_path,) = rule["http"]["paths"]
        body = json.dumps(RENEWAL_BODY).encode()
        signature = hmac.new(WEBHOOK_SECRET.encode(), body, "sha256").hexdigest()
        answer = requests.post(
            f"{url}{public_path['path']}{APP_ID}",
            data=body,
            headers={"nami-signature": signature},
            timeout=10,
        )
        assert (answer.status_code, answer.json()) == (200, {"status": "stored"}), answer.text
    finally:
        receiver.stop()
    store = EventStore(environment["NAMI_EVENTS_DB_URL"])
    try:
        (events,) = store.read_events()
    finally:
        store.engine.dispose()
    assert list(events["event_id"]) == [RENEWAL_BODY["id"]]
    assert list(events["app_id"]) == [APP_ID]
