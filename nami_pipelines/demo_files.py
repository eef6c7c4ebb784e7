"""What the demo leaves in the data folder for `scripts/dev ui`: its integrations file, the key
variables those integrations name, and the emulator's port and accepted keys, so the UI can start
the same emulator and deliver to it. Plain files, no Dagster: the demo writes them, the UI
launcher reads them."""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from nami_pipelines.emulators import (
    EmulatorClient,
    EmulatorError,
    EmulatorProcess,
    EmulatorSettings,
)
from nami_pipelines.settings import data_dir

DEMO_PORT_VARIABLE = "NAMI_DEMO_EMULATOR_PORT"
DEFAULT_DEMO_PORT = 8765
EMULATOR_HOST = "127.0.0.1"

# Keys the demo's emulator accepts, and the secret its webhooks are signed with; nothing real.
# They are written to `demo.env` for the UI (and for `nami-pipelines receive` on the demo's file).
DEMO_WEBHOOK_SECRET_VARIABLE = "DEMO_WEBHOOK_SECRET"
DEMO_SECRETS = {
    "DEMO_IOS_KEY": "demo-ios-s2s-key",
    "DEMO_IOS_SECRET": "demo-ios-s2s-secret",
    "DEMO_ANDROID_KEY": "demo-android-s2s-key",
    "DEMO_ANDROID_SECRET": "demo-android-s2s-secret",
    "DEMO_AMPLITUDE_API_KEY": "demo-amplitude-api-key",
    DEMO_WEBHOOK_SECRET_VARIABLE: "demo-webhook-secret",
}


def demo_folder() -> Path:
    return data_dir() / "demo"


def demo_emulator_settings() -> EmulatorSettings:
    return EmulatorSettings(
        mparticle_credentials={
            DEMO_SECRETS["DEMO_IOS_KEY"]: DEMO_SECRETS["DEMO_IOS_SECRET"],
            DEMO_SECRETS["DEMO_ANDROID_KEY"]: DEMO_SECRETS["DEMO_ANDROID_SECRET"],
        },
        amplitude_api_keys=[DEMO_SECRETS["DEMO_AMPLITUDE_API_KEY"]],
    )


@dataclass(frozen=True, slots=True)
class DemoFiles:
    """The demo's files in one folder."""

    folder: Path

    @property
    def integrations(self) -> Path:
        return self.folder / "integrations.yaml"

    @property
    def environment(self) -> Path:
        return self.folder / "demo.env"

    @property
    def emulator(self) -> Path:
        return self.folder / "emulator.json"

    def exist(self) -> bool:
        return all(path.is_file() for path in (self.integrations, self.environment, self.emulator))

    def write(self, document: Mapping, port: int, settings: EmulatorSettings) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.integrations.write_text(yaml.safe_dump(dict(document), sort_keys=False))
        self.environment.write_text(
            "# The variables data/demo/integrations.yaml names: the demo emulator's keys and the\n"
            "# secret the demo's webhooks are signed with.\n"
            + "".join(f"{name}={value}\n" for name, value in DEMO_SECRETS.items())
        )
        self.emulator.write_text(
            json.dumps(
                {"host": EMULATOR_HOST, "port": port, "settings": settings.to_json()}, indent=2
            )
        )

    def variables(self) -> dict[str, str]:
        return read_env_file(self.environment)

    def emulator_port_and_settings(self) -> tuple[int, EmulatorSettings]:
        recorded = json.loads(self.emulator.read_text())
        return int(recorded["port"]), EmulatorSettings.from_json(recorded["settings"])


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines as `dagster dev` reads a `.env` (comments and blank lines ignored,
    surrounding quotes removed)."""
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.removeprefix("export ").split("=", 1)
        found[name.strip()] = value.strip().strip("'\"")
    return found


class _EmulatorAtPort(EmulatorProcess):
    """An emulator child process that first tries the given port (then a free one)."""

    def __init__(self, settings: EmulatorSettings, port: int) -> None:
        super().__init__(settings, host=EMULATOR_HOST)
        self.url = f"http://{EMULATOR_HOST}:{port}"


def answering_emulator(port: int) -> EmulatorClient | None:
    """The emulator already listening on the port (a `scripts/dev ui` running), if any."""
    client = EmulatorClient(f"http://{EMULATOR_HOST}:{port}", timeout=2.0)
    try:
        client.health()
    except (requests.RequestException, EmulatorError, ValueError):
        client.close()
        return None
    return client


@contextmanager
def emulator_on_port(settings: EmulatorSettings, port: int) -> Iterator[EmulatorClient]:
    """The emulator on `port`: the one already answering there, configured with `settings`'
    keys, or a new child process (stopped on exit), on another port if that one is taken."""
    running = answering_emulator(port)
    if running is not None:
        try:
            running.configure(
                mparticle_credentials=settings.mparticle_credentials,
                amplitude_api_keys=settings.amplitude_api_keys,
            )
            yield running
        finally:
            running.close()
        return
    with _EmulatorAtPort(settings, port) as started:
        yield started
