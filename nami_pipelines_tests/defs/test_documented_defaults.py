"""docs/real-accounts.md says in one table which sensors and schedules are on by default; the
definitions must agree with it, for every sensor and schedule there is."""

import re
from pathlib import Path

import dagster as dg

from nami_pipelines.config import parse_integrations
from nami_pipelines.defs.delivery.definitions import build_delivery_definitions
from nami_pipelines.defs.events.assets import events_definitions
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.defs.snapshots.assets import snapshot_definitions
from nami_pipelines_tests.conftest import integrations_document

PAGE = Path(__file__).resolve().parents[2] / "docs" / "real-accounts.md"


def documented_defaults() -> dict[str, bool]:
    table = PAGE.read_text().split("## Which sensors and schedules are on by default")[1]
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| (\*\*on\*\*|off) \|", table, flags=re.MULTILINE)
    return {name: state == "**on**" for name, state in rows}


def test_the_documented_defaults_are_the_definitions_defaults(monkeypatch):
    monkeypatch.delenv("NAMI_AUTOMATION", raising=False)
    integrations = parse_integrations(
        integrations_document("http://127.0.0.1:1", "app"), check_env=False
    )
    definitions = dg.Definitions.merge(
        build_delivery_definitions(integrations),
        snapshot_definitions(),
        events_definitions(),
        dg.Definitions(resources={"event_store": EventStoreResource(database_url="sqlite://")}),
    )
    repository = definitions.get_repository_def()
    actual = {
        sensor.name: sensor.default_status == dg.DefaultSensorStatus.RUNNING
        for sensor in repository.sensor_defs
    } | {
        schedule.name: schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        for schedule in repository.schedule_defs
    }
    assert documented_defaults() == actual
