"""What `scripts/dev ui` gives `dagster dev`: the user's own integrations always win; with none,
the demo's file and keys (and its emulator); with neither, a hint."""

from pathlib import Path

import pytest

from nami_pipelines.commands.ui import plan_ui
from nami_pipelines.demo_files import DEMO_SECRETS, DemoFiles, demo_emulator_settings


@pytest.fixture
def demo(tmp_path) -> DemoFiles:
    files = DemoFiles(tmp_path / "data" / "demo")
    files.write({"integrations": []}, 18_765, demo_emulator_settings())
    return files


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "repository"
    folder.mkdir()
    return folder


def test_with_no_integrations_of_the_users_the_demos_file_keys_and_emulator_are_used(demo, root):
    plan = plan_ui({"PATH": "/bin"}, root, demo)
    assert plan.demo == demo
    assert plan.environment == {"NAMI_INTEGRATIONS_FILE": str(demo.integrations), **DEMO_SECRETS}
    assert demo.emulator_port_and_settings() == (18_765, demo_emulator_settings())


def test_a_variable_the_user_set_is_not_replaced_by_the_demos(demo, root):
    plan = plan_ui({"DEMO_IOS_KEY": "mine"}, root, demo)
    assert "DEMO_IOS_KEY" not in plan.environment
    assert plan.environment["DEMO_ANDROID_KEY"] == DEMO_SECRETS["DEMO_ANDROID_KEY"]


@pytest.mark.parametrize("where", ["environment", "dotenv", "integrations.yaml"])
def test_the_users_own_integrations_always_win(demo, root, where):
    environ: dict[str, str] = {}
    if where == "environment":
        environ["NAMI_INTEGRATIONS_FILE"] = "/etc/nami/integrations.yaml"
    elif where == "dotenv":
        (root / ".env").write_text("# mine\nNAMI_INTEGRATIONS_FILE='/etc/nami/integrations.yaml'\n")
    else:
        (root / "integrations.yaml").write_text("integrations: []\n")
    plan = plan_ui(environ, root, demo)
    assert plan.demo is None and plan.environment == {}
    expected = "/etc/nami/integrations.yaml" if where != "integrations.yaml" else str(root)
    assert expected in plan.note


def test_with_neither_the_note_says_how_to_get_integrations(root, tmp_path):
    plan = plan_ui({}, root, DemoFiles(tmp_path / "no-demo-yet"))
    assert plan.demo is None and plan.environment == {}
    assert "scripts/dev demo" in plan.note and "integrations.yaml" in plan.note
