"""Project-level checks a reviewer would run by hand: lint, formatting, Dagster definitions."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False
    )


def test_ruff_lint_and_format_are_clean():
    ruff = shutil.which("ruff", path=str(BIN)) or "ruff"
    lint = run(ruff, "check", "nami_pipelines", "nami_pipelines_tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatting = run(ruff, "format", "--check", "nami_pipelines", "nami_pipelines_tests")
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr


def test_dg_check_defs_passes_with_the_example_integrations(tmp_path):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "NAMI_INTEGRATIONS_FILE": str(ROOT / "integrations.example.yaml"),
        "NAMI_EVENTS_DB_URL": f"sqlite:///{tmp_path / 'events.sqlite'}",
        **{
            variable: "placeholder-credential"
            for variable in (
                "MPARTICLE_IOS_KEY",
                "MPARTICLE_IOS_SECRET",
                "MPARTICLE_ANDROID_KEY",
                "MPARTICLE_ANDROID_SECRET",
                "AMPLITUDE_PRODUCTION_API_KEY",
                "AMPLITUDE_EU_API_KEY",
            )
        },
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = run(str(BIN / "dg"), "check", "defs", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_project_has_the_documented_top_level_files():
    for name in ("pyproject.toml", "workspace.yaml", "dagster.yaml", "README.md", ".ci/run"):
        assert (ROOT / name).is_file(), name
