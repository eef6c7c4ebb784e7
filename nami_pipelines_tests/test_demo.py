"""The README's main command, end to end, twice: the second run sends nothing new."""

import os
import re
import subprocess
import sys
from pathlib import Path

from nami_pipelines_tests.conftest import free_port, private_dagster_home

BIN = Path(sys.executable).parent


def run_demo(data_dir: Path) -> str:
    env = {**os.environ, "NAMI_DATA_DIR": str(data_dir)}
    env["DAGSTER_HOME"] = private_dagster_home(data_dir)
    env["NAMI_DEMO_EMULATOR_PORT"] = str(free_port())
    env.pop("NAMI_EVENTS_DB_URL", None)
    result = subprocess.run(
        [str(BIN / "nami-pipelines"), "demo", "--users", "120", "--days", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def delivery_rows(output: str) -> dict[str, list[int]]:
    section = output.split("deliveries (this run")[1]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\s*(demo_\w+)\s+([\d\s]+)$", line)
        if match:
            rows[match.group(1)] = [int(value) for value in match.group(2).split()]
    return rows


def test_demo_runs_end_to_end_and_the_second_run_sends_nothing(tmp_path):
    first = delivery_rows(run_demo(tmp_path))
    assert set(first) == {"demo_ios_feed", "demo_android_feed", "demo_amplitude"}
    for name, (selected, accepted, rejected, skipped, already, _, recorded, total) in first.items():
        assert selected == accepted + rejected + skipped > 0, name
        assert already == 0 and recorded == accepted == total, name
    second_output = run_demo(tmp_path)
    assert "loaded 0," in second_output
    second = delivery_rows(second_output)
    for name, (selected, accepted, _, _, already, updates, recorded, total) in second.items():
        assert (accepted, updates, recorded) == (0, 0, 0), name
        assert already == selected and total == first[name][1], name
