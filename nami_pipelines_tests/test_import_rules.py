"""The package's import rules, read from the source with `ast`: Dagster stays in `defs/`, no
module imports itself through others, `defs/` never imports a command, and the commands that run
no Dagster job start without loading it."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from nami_pipelines_tests.conftest import integrations_document

PACKAGE = Path(__file__).resolve().parents[1] / "nami_pipelines"
# The code location entry (workspace.yaml loads it): it merges `defs/` and may import Dagster.
DAGSTER_ENTRY = "nami_pipelines.definitions"
# The command line: `defs/` serves it and never imports it.
COMMAND_LINE = ("nami_pipelines.cli", "nami_pipelines.commands", "nami_pipelines.demo")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(module: str) -> set[str]:
    """What `module` imports, anywhere in it (inside functions too): `from a import b` names
    the module `a.b` when there is one, else `a`."""
    path = MODULES[module]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = (
                    module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                )
                base_parts = package[: len(package) - node.level + 1]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            found = [name for name in submodules if name in MODULES]
            names.update(found)
            if len(found) < len(submodules):
                names.add(base)
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}.")


def test_the_module_table_is_read():
    """The rules below look at every module; an empty table would let them all pass."""
    assert len(MODULES) > 100
    assert "nami_pipelines.defs.launch" in MODULES
    assert "dagster" in imported("nami_pipelines.defs.launch")
    assert "nami_pipelines.defs.launch" in imported("nami_pipelines.commands.common")


def test_nothing_outside_defs_imports_dagster():
    offenders = sorted(
        module
        for module in MODULES
        if not within(module, "nami_pipelines.defs")
        and module != DAGSTER_ENTRY
        and any(within(name, "dagster") for name in imported(module))
    )
    assert not offenders, f"import Dagster outside nami_pipelines/defs/: {offenders}"


def test_defs_never_imports_the_command_line():
    offenders = sorted(
        f"{module} imports {name}"
        for module in MODULES
        if within(module, "nami_pipelines.defs")
        for name in imported(module)
        if any(within(name, command) for command in COMMAND_LINE)
    )
    assert not offenders, offenders


def test_no_module_imports_itself_through_others():
    graph = {module: imported(module) & set(MODULES) for module in MODULES}
    circles: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


# Each command run as a user would, in a fresh interpreter; then the Dagster modules it loaded.
_NO_DAGSTER_SCRIPT = """
import json, sys
from nami_pipelines.cli import main

codes = {}
for argv in json.loads(sys.argv[1]):
    codes[argv[0]] = main(argv)
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "dagster")
print(json.dumps({"codes": codes, "dagster_modules": loaded}))
"""


def test_commands_that_run_no_dagster_job_never_load_dagster(
    tmp_path, fresh_emulator, credentials_env
):
    document = integrations_document(fresh_emulator.url, "app-production-0001")
    integrations = tmp_path / "integrations.yaml"
    integrations.write_text(yaml.safe_dump(document))
    events = tmp_path / "events.ndjson"
    commands = [
        ["generate", "--users", "3", "--days", "1", "--start", "2026-02-01", "--out", str(events)],
        ["load", str(events)],
        ["status"],
        ["check", "--file", str(integrations)],
        ["preview", "--integration", "amplitude_prod", "--date", "2026-02-01"],
        ["snapshot", "--at", "2026-02-02T00:00:00Z"],
        # No `webhooks:` list in this file: receive stops at start-up, in one line (exit 2).
        ["receive", "--port", "1"],
    ]
    environment = {
        **os.environ,
        "NAMI_EVENTS_DB_URL": f"sqlite:///{tmp_path / 'events.sqlite'}",
        "NAMI_INTEGRATIONS_FILE": str(integrations),
    }
    result = subprocess.run(
        [sys.executable, "-c", _NO_DAGSTER_SCRIPT, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    expected_codes = {argv[0]: 0 for argv in commands} | {"receive": 2}
    assert report["codes"] == expected_codes, result.stderr
    assert report["dagster_modules"] == []
