"""The production stack a test starts: dagster-webserver and dagster-daemon on the deploy
instance (`deploy/dagster.yaml`, all storage on PostgreSQL), the webhook receiver on the event
database (`nami-pipelines receive`, with the command and as many replicas as deploy/receiver.yaml
gives), the emulator.

Everything is on free ports and in throwaway databases and folders, so the stack never touches
the repository's own `data/` or a developer's Dagster instance, and several can run at once
(pytest-xdist workers).
"""

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from nami_pipelines.config import AnyIntegration, parse_integrations
from nami_pipelines.emulators import EmulatorProcess, EmulatorSettings
from nami_pipelines.events.store import EventStore
from nami_pipelines.receiver.apps import SHARED_SECRET_VARIABLE
from nami_pipelines.samples import PRODUCTION_APP_ID, STAGING_APP_ID
from nami_pipelines_tests.conftest import AMPLITUDE_KEYS, MPARTICLE_KEYS, integrations_document
from nami_pipelines_tests.production.graphql import DagsterGraphQL
from nami_pipelines_tests.production.manifests import local_receiver_command, receiver_deployment
from nami_pipelines_tests.production.processes import (
    ManagedProcess,
    answers_ok,
    free_port,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = ROOT / "workspace.yaml"
DEPLOY_INSTANCE = ROOT / "deploy" / "dagster.yaml"
ARTIFACTS = ROOT / "test-artifacts" / "production"
BIN = Path(sys.executable).parent

LOCATION_NAME = "nami_pipelines"
SENSOR_NAME = "new_events_sensor"
# The daemons a backfill and the sensor need; each must heartbeat before the test relies on it.
NEEDED_DAEMONS = ("BACKFILL", "QUEUED_RUN_COORDINATOR", "SENSOR")

WEBSERVER_START_SECONDS = 90.0
RECEIVER_START_SECONDS = 30.0
START_ATTEMPTS = 3
LOCATION_LOAD_SECONDS = 120.0
DAEMON_START_SECONDS = 90.0
SENSOR_INTERVAL_SECONDS = 5
# A run that dies mid-send leaves its claims for this long; short, so a retried run (the
# instance retries failed runs) resends them within the test's time bounds.
DELIVERY_LEASE_SECONDS = 30
# The integrations' app is verified with the shared secret; the other app has a `webhooks:`
# entry of its own, with its own secret variable.
SHARED_WEBHOOK_SECRET = "whsec-stack-prod-3f81c0"
STAGING_SECRET_VARIABLE = "NAMI_STAGING_WEBHOOK_SECRET"
STAGING_WEBHOOK_SECRET = "whsec-stack-staging-7a2e94"
WEBHOOK_SECRETS = {PRODUCTION_APP_ID: SHARED_WEBHOOK_SECRET, STAGING_APP_ID: STAGING_WEBHOOK_SECRET}


def deliveries_asset(integration: str) -> list[str]:
    """The asset key path of one integration's deliveries, as GraphQL takes it."""
    return ["deliveries", integration]


def credential_variables() -> dict[str, str]:
    """The secrets under the variable names `integrations_document` gives (as `credentials_env`
    sets them), for the child processes' environment only."""
    variables: dict[str, str] = {}
    for name, (key, secret) in MPARTICLE_KEYS.items():
        variables[f"{name.upper()}_KEY"] = key
        variables[f"{name.upper()}_SECRET"] = secret
    for name, key in AMPLITUDE_KEYS.items():
        variables[f"{name.upper()}_API_KEY"] = key
    return variables


def production_instance_yaml(compute_logs_dir: Path) -> str:
    """`deploy/dagster.yaml` as shipped, except compute logs go to the test's folder instead of
    a fixed `/tmp` path shared by every run on the machine."""
    config: dict[str, Any] = yaml.safe_load(DEPLOY_INSTANCE.read_text())
    config["compute_logs"]["config"]["base_dir"] = str(compute_logs_dir)
    return yaml.safe_dump(config, sort_keys=False)


@contextmanager
def scratch_database(admin: sa.Engine) -> Iterator[str]:
    """A new PostgreSQL database (URL yielded), dropped afterwards even if connections linger.
    Dagster's storage creates its tables in it, as in a fresh production deployment."""
    name = f"dagster_e2e_{uuid.uuid4().hex[:10]}"
    autocommit = admin.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.execute(sa.text(f'create database "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with autocommit.connect() as connection:
            connection.execute(sa.text(f'drop database if exists "{name}" with (force)'))


@contextmanager
def scratch_schema(admin: sa.Engine) -> Iterator[str]:
    """A new schema for the event database, selected through the URL (as conftest's
    `postgres_url` does) so the webserver, the daemon and every run see it."""
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(sa.text(f"create schema {schema}"))
    base = admin.url.render_as_string(hide_password=False)
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"drop schema if exists {schema} cascade"))


@dataclass
class ProductionStack:
    """What a test needs to drive and inspect the running stack."""

    graphql: DagsterGraphQL
    emulator: EmulatorProcess
    store: EventStore
    integrations: dict[str, AnyIntegration]
    home: Path
    artifacts: Path
    environment: dict[str, str]
    exits: ExitStack
    processes: list[ManagedProcess] = field(default_factory=list)
    repository_name: str = ""
    # One base URL per receiver replica.
    receiver_urls: list[str] = field(default_factory=list)
    # app id -> the secret its webhooks are signed with.
    webhook_secrets: dict[str, str] = field(default_factory=lambda: dict(WEBHOOK_SECRETS))

    @property
    def url(self) -> str:
        """The webserver's base URL, e.g. http://127.0.0.1:PORT (the UI and /graphql)."""
        return self.graphql.base_url

    def sensor_selector(self, sensor_name: str = SENSOR_NAME) -> dict[str, str]:
        return {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": self.repository_name,
            "sensorName": sensor_name,
        }

    def logs(self) -> str:
        """Every process's recent output, for failure messages."""
        return "\n".join(process.tail() for process in self.processes)

    def start_daemon(self) -> None:
        """Starts dagster-daemon (once) and returns when the daemons the tests rely on
        heartbeat. Dagster's backfill daemon looks for new backfills every 30 s, starting with
        its first iteration: starting it right after a launch lets that iteration pick the
        backfill up instead of costing the test a fixed half-minute."""
        if any(process.name == "dagster-daemon" for process in self.processes):
            return
        _start(self, "dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)])

        def healthy() -> bool:
            self.check_processes()
            return not set(self.graphql.unhealthy_daemons()).intersection(NEEDED_DAEMONS)

        wait_until(
            healthy,
            timeout=DAEMON_START_SECONDS,
            interval=1.0,
            what=f"daemons {', '.join(NEEDED_DAEMONS)} to heartbeat",
            explain=self.logs,
        )

    def check_processes(self) -> None:
        """Fails at once, with the logs, when the receiver, the webserver or the daemon died."""
        dead = [process.name for process in self.processes if not process.running()]
        if dead:
            raise AssertionError(f"{', '.join(dead)} exited early\n{self.logs()}")


def _start(stack: ProductionStack, name: str, command: list[str]) -> ManagedProcess:
    process = ManagedProcess(
        name, command, cwd=ROOT, env=stack.environment, log_path=stack.artifacts / f"{name}.log"
    )
    stack.processes.append(process)
    stack.exits.callback(process.stop)
    return process


def _start_serving(
    stack: ProductionStack,
    name: str,
    command: Callable[[int], list[str]],
    probe_path: str,
    timeout: float,
) -> str:
    """Starts a server on a free port and returns its base URL once `probe_path` answers 200.
    Another process may take the free port between the probe and the server's bind: a server
    that exits while starting is tried again on a new port."""
    for _attempt in range(START_ATTEMPTS):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = _start(stack, name, command(port))

        def started(process: ManagedProcess = process, url: str = url) -> str | None:
            if not process.running():
                return "exited"
            return "answers" if answers_ok(f"{url}{probe_path}") else None

        outcome = wait_until(
            started, timeout=timeout, what=f"{name}: GET {probe_path}", explain=stack.logs
        )
        if outcome == "answers":
            return url
        process.stop()
        stack.processes.remove(process)
    raise AssertionError(f"{name} did not start\n{stack.logs()}")


def _start_receivers(stack: ProductionStack) -> None:
    """The replicas of deploy/receiver.yaml, each running the container's command on a free
    local port, all on the one event database."""
    for replica in range(receiver_deployment()["spec"]["replicas"]):
        url = _start_serving(
            stack,
            f"nami-webhook-receiver-{replica}",
            local_receiver_command,
            "/healthz",
            RECEIVER_START_SECONDS,
        )
        stack.receiver_urls.append(url)


def _start_webserver(stack: ProductionStack) -> None:
    """Returns once the UI answers and the code location is loaded, naming its repository."""
    command = [str(BIN / "dagster-webserver"), "-w", str(WORKSPACE), "-h", "127.0.0.1"]
    stack.graphql.base_url = _start_serving(
        stack,
        "dagster-webserver",
        lambda port: [*command, "-p", str(port)],
        "/server_info",
        WEBSERVER_START_SECONDS,
    )

    def repository() -> dict[str, Any] | None:
        stack.check_processes()
        return stack.graphql.loaded_repositories().get(LOCATION_NAME)

    loaded = wait_until(
        repository,
        timeout=LOCATION_LOAD_SECONDS,
        what=f"code location {LOCATION_NAME} to load",
        explain=stack.logs,
    )
    stack.repository_name = loaded["name"]


@contextmanager
def production_stack(admin: sa.Engine, work_dir: Path) -> Iterator[ProductionStack]:
    """Starts the stack (the daemon on demand, see `start_daemon`), yields it, and always stops
    and removes all of it: processes first (daemon, webserver, then receiver: reverse start
    order), then the emulator and the databases."""
    with ExitStack() as exits:
        dagster_pg_url = exits.enter_context(scratch_database(admin))
        events_url = exits.enter_context(scratch_schema(admin))
        home = work_dir / "dagster_home"
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_text(production_instance_yaml(work_dir / "compute_logs"))
        artifacts = ARTIFACTS / f"stack-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True)

        settings = EmulatorSettings(
            mparticle_credentials=dict(MPARTICLE_KEYS.values()),
            amplitude_api_keys=list(AMPLITUDE_KEYS.values()),
        )
        emulator = exits.enter_context(EmulatorProcess(settings))
        document = {
            **integrations_document(emulator.url, PRODUCTION_APP_ID),
            "webhooks": [{"app_id": STAGING_APP_ID, "secret_env": STAGING_SECRET_VARIABLE}],
        }
        integrations_file = work_dir / "integrations.yaml"
        integrations_file.write_text(yaml.safe_dump(document, sort_keys=False))
        credentials = credential_variables()
        # The secrets live in the children's environment only; the code location checks them.
        integrations = parse_integrations(document, check_env=False)

        environment: dict[str, str] = {
            **os.environ,
            **credentials,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": dagster_pg_url,
            "NAMI_EVENTS_DB_URL": events_url,
            "NAMI_INTEGRATIONS_FILE": str(integrations_file),
            "NAMI_DATA_DIR": str(work_dir / "data"),
            "NAMI_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
            "NAMI_DELIVERY_LEASE_SECONDS": str(DELIVERY_LEASE_SECONDS),
            SHARED_SECRET_VARIABLE: SHARED_WEBHOOK_SECRET,
            STAGING_SECRET_VARIABLE: STAGING_WEBHOOK_SECRET,
            "PYTHONUNBUFFERED": "1",
        }
        store = EventStore(events_url)
        exits.callback(store.engine.dispose)
        graphql = DagsterGraphQL("")  # its URL once the webserver answers
        exits.callback(graphql.close)
        stack = ProductionStack(
            graphql=graphql,
            emulator=emulator,
            store=store,
            integrations={integration.name: integration for integration in integrations},
            home=home,
            artifacts=artifacts,
            environment=environment,
            exits=exits,
        )
        _start_receivers(stack)
        _start_webserver(stack)
        yield stack
