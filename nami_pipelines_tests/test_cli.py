"""The command line as a user runs it: output lines, exit codes, one-line errors."""

import json
from pathlib import Path

import pytest

from nami_pipelines.cli import main
from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "examples" / "nami_events.sample.ndjson"


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NAMI_EVENTS_DB_URL", database_url)
    return database_url


def test_load_prints_counts_and_is_idempotent(cli_database, capsys):
    assert main(["load", str(SAMPLE)]) == 0
    assert capsys.readouterr().out.strip() == "loaded 15, duplicates 0, quarantined 0"
    assert main(["load", str(SAMPLE)]) == 0
    assert capsys.readouterr().out.strip() == "loaded 0, duplicates 15, quarantined 0"


def test_snapshot_prints_one_sorted_json_object_per_user(cli_database, capsys):
    main(["load", str(SAMPLE)])
    capsys.readouterr()
    assert main(["snapshot", "--at", "2026-02-15T00:00:00Z"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["nami_user_id"] for line in lines] == sorted(
        line["nami_user_id"] for line in lines
    )
    assert len(lines) == 3
    for line in lines:
        assert list(line) == ["nami_user_id", "external_id", *ATTRIBUTE_NAMES]
    google_user = next(line for line in lines if line["external_id"] is None)
    assert google_user["namiml_active_entitlements"] == []  # paused on 2026-02-14
    assert google_user["namiml_former_subscriber"] is True


def test_generate_writes_deterministic_ndjson(tmp_path, capsys):
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    arguments = ["--users", "20", "--days", "5", "--start", "2026-02-01", "--seed", "3"]
    assert main(["generate", *arguments, "--out", str(first)]) == 0
    assert main(["generate", *arguments, "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    count = len(first.read_text().splitlines())
    assert f"wrote {count} events for 20 users" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["load", "/no/such/file.ndjson"], "no such file: /no/such/file.ndjson"),
        (["snapshot", "--at", "2026-02-01T00:00:00"], "has no UTC offset"),
        (
            ["generate", "--users", "0", "--days", "1", "--start", "2026-02-01", "--out", "x"],
            "--users and --days must be at least 1",
        ),
    ],
)
def test_bad_input_is_one_line_and_non_zero(arguments, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NAMI_EVENTS_DB_URL", f"sqlite:///{tmp_path / 'e.sqlite'}")
    assert main(arguments) != 0
    error = capsys.readouterr().err.strip()
    assert message in error
    assert len(error.splitlines()) == 1
