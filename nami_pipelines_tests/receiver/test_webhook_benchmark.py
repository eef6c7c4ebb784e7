"""The webhook benchmark at a tiny size: both receivers run on SQLite, every webhook is stored
exactly once, and the comparison row is there. Speed is the benchmark's business, not this
test's."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_the_webhook_benchmark_runs_and_loses_nothing(tmp_path: Path) -> None:
    results = tmp_path / "results"
    command = [sys.executable, "-m", "benchmarks", "--only", "webhooks", "--webhooks", "150"]
    command += ["--webhook-seconds", "0.5", "--work-dir", str(tmp_path / "work")]
    command += ["--results", str(results)]
    environment = {k: v for k, v in os.environ.items() if k != "NAMI_BENCHMARK_POSTGRES_URL"}
    completed = subprocess.run(
        command, cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {row["case"]: row for row in json.loads((results / "latest.json").read_text())["rows"]}
    for case in ("SQLite: ours (group commit)", "SQLite: plain (one commit per request)"):
        assert rows[case]["exactly_once"] is True and rows[case]["events"] == 150
        assert "0 non-2xx, 150 stored" in rows[case]["result"]
    assert rows["SQLite: group commit vs plain"]["result"].startswith("x")
    assert rows["PostgreSQL"]["skipped"]
