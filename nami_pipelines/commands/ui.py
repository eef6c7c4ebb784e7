"""`scripts/dev ui`: `dagster dev` on the user's integrations, or, when there are none yet, on
the ones the last `scripts/dev demo` left, with their emulator started beside the UI (and stopped
with it) on the port and keys the demo recorded.

A user's own integrations always win: `NAMI_INTEGRATIONS_FILE` in the environment or in `.env`
(which `dagster dev` loads), or an `integrations.yaml` at the repository root.
"""

import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from nami_pipelines.demo_files import DemoFiles, demo_folder, emulator_on_port, read_env_file
from nami_pipelines.settings import INTEGRATIONS_FILE_VARIABLE, PROJECT_ROOT


@dataclass(frozen=True, slots=True)
class UiPlan:
    """What `dagster dev` gets beyond the environment, and whether the demo emulator runs."""

    note: str
    environment: dict[str, str] = field(default_factory=dict)
    demo: DemoFiles | None = None


def plan_ui(environ: Mapping[str, str], root: Path, demo: DemoFiles) -> UiPlan:
    configured = environ.get(INTEGRATIONS_FILE_VARIABLE)
    if configured:
        return UiPlan(f"integrations: {configured} ({INTEGRATIONS_FILE_VARIABLE})")
    from_dotenv = read_env_file(root / ".env").get(INTEGRATIONS_FILE_VARIABLE)
    if from_dotenv:
        return UiPlan(f"integrations: {from_dotenv} ({INTEGRATIONS_FILE_VARIABLE} in .env)")
    own = root / "integrations.yaml"
    if own.is_file():
        return UiPlan(f"integrations: {own}")
    if not demo.exist():
        return UiPlan(
            "no integrations file yet: run scripts/dev demo, or write integrations.yaml "
            "(see integrations.example.yaml and docs/real-accounts.md)"
        )
    keys = {name: value for name, value in demo.variables().items() if name not in environ}
    return UiPlan(
        f"integrations: {demo.integrations} (the demo's; your own integrations.yaml or "
        f"{INTEGRATIONS_FILE_VARIABLE} takes over)",
        {INTEGRATIONS_FILE_VARIABLE: str(demo.integrations), **keys},
        demo,
    )


def _interruptible() -> None:
    """In the child: interrupts on, even when the launcher started in the background (where
    the shell ignores them), so Ctrl-C and a forwarded stop reach `dagster dev`."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_ui(arguments: Sequence[str], environ: Mapping[str, str], root: Path) -> int:
    plan = plan_ui(environ, root, DemoFiles(demo_folder()))
    print(f"scripts/dev ui: {plan.note}", flush=True)
    with ExitStack() as stack:
        if plan.demo is not None:
            port, settings = plan.demo.emulator_port_and_settings()
            try:
                emulator = stack.enter_context(emulator_on_port(settings, port))
            except RuntimeError as error:
                first_line = str(error).splitlines()[0]
                print(f"scripts/dev ui: {first_line}", file=sys.stderr)
                return 1
            if not emulator.url.endswith(f":{port}"):
                print(
                    f"scripts/dev ui: port {port} is taken; run scripts/dev demo again to "
                    "record a free one",
                    file=sys.stderr,
                )
                return 1
            print(f"scripts/dev ui: demo emulator on {emulator.url}", flush=True)
        dagster = Path(sys.executable).parent / "dagster"
        command = [str(dagster), "dev", "-w", "workspace.yaml", *arguments]
        process = subprocess.Popen(
            command,
            cwd=root,
            env={**environ, **plan.environment},
            preexec_fn=_interruptible,
        )
        # dagster dev shuts down on an interrupt (not on SIGTERM): a stop request for the
        # launcher becomes one, and the emulator stops once the UI has.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: process.send_signal(signal.SIGINT))
        try:
            return process.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached dagster dev too (same process group): let it shut down cleanly.
            return process.wait()


if __name__ == "__main__":
    import os

    sys.exit(run_ui(sys.argv[1:], dict(os.environ), PROJECT_ROOT))
