"""Where a user sees revenue conversion: `preview` prints the converted bodies, and a transaction
waiting for its rate shows in `status` and fails the partition's check until the rate arrives."""

import json

import dagster as dg
import pytest
import yaml

from nami_pipelines.cli import main
from nami_pipelines.config import load_integrations
from nami_pipelines.defs.delivery.assets import EVERY_EVENT_HAS_AN_OUTCOME, deliveries_key
from nami_pipelines.defs.delivery.definitions import build_delivery_definitions
from nami_pipelines.defs.resources import EventStoreResource
from nami_pipelines.delivery.ledger import DeliveryLedger
from nami_pipelines_tests.builders import APP_ID
from nami_pipelines_tests.delivery.revenue_world import (
    EUR_APPLE,
    EUR_RATE,
    GBP_APPLE,
    GBP_RATE,
    RATES_HEADER,
    USD_GOOGLE,
    load_transactions,
)

MISSING_GBP = "no GBP rate for 2026-11-29"


@pytest.fixture
def configured(event_store, tmp_path, fresh_emulator, credentials_env, monkeypatch):
    """The transactions loaded; an integrations file (rates with EUR only, next to it) that the
    commands read, as a user's would be."""
    load_transactions(event_store, tmp_path)
    (tmp_path / "rates.csv").write_text(RATES_HEADER + EUR_RATE)
    entry = {
        "name": "amplitude_prod",
        "type": "amplitude",
        "app_id": APP_ID,
        "endpoint": fresh_emulator.url,
        "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
        "revenue": {"currency": "USD", "rates_file": "rates.csv"},
    }
    path = tmp_path / "integrations.yaml"
    path.write_text(yaml.safe_dump({"integrations": [entry]}))
    monkeypatch.setenv("NAMI_INTEGRATIONS_FILE", str(path))
    monkeypatch.setenv("NAMI_EVENTS_DB_URL", event_store.url)
    return {"store": event_store, "emulator": fresh_emulator, "folder": tmp_path}


def test_preview_prints_the_converted_bodies_and_holds_the_unrated_one(configured, capsys):
    capsys.readouterr()
    assert main(["preview", "--integration", "amplitude_prod", "--date", "2026-11-29"]) == 0
    bodies = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events = {event["insert_id"]: event for body in bodies for event in body.get("events", [])}
    assert set(events) == {EUR_APPLE, USD_GOOGLE}
    eur = events[EUR_APPLE]
    assert (eur["price"], eur["revenue"], eur["currency"]) == (10.7892, 10.7892, "USD")
    assert eur["event_properties"]["original_price"] == 9.99
    assert eur["event_properties"]["original_currency"] == "EUR"
    assert eur["event_properties"]["exchange_rate"] == 1.08
    assert configured["emulator"].stats()["amplitude"]["requests"] == 0
    assert DeliveryLedger(configured["store"].engine).entries("amplitude_prod") == []


def materialize(configured, **options) -> dg.ExecuteInProcessResult:
    integrations = load_integrations()
    (asset,) = [
        asset
        for asset in build_delivery_definitions(integrations).assets
        if asset.key == deliveries_key("amplitude_prod")
    ]
    return dg.materialize(
        [asset],
        partition_key="2026-11-29",
        instance=dg.DagsterInstance.ephemeral(),
        resources={"event_store": EventStoreResource(database_url=configured["store"].url)},
        **options,
    )


def use_rates_table(configured, table: str) -> None:
    """The integrations file, now taking its rates from `table` in the event database."""
    path = configured["folder"] / "integrations.yaml"
    document = yaml.safe_load(path.read_text())
    document["integrations"][0]["revenue"] = {"currency": "USD", "rates_table": table}
    path.write_text(yaml.safe_dump(document))


def check_of(result: dg.ExecuteInProcessResult) -> tuple[bool, dict]:
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == EVERY_EVENT_HAS_AN_OUTCOME
    return check.passed, {key: value.value for key, value in check.metadata.items()}


def test_a_missing_rate_shows_in_status_and_the_check_until_it_arrives(configured, capsys):
    passed, metadata = check_of(materialize(configured))
    assert not passed
    assert (metadata["pending"], metadata["accepted"]) == (1, 2)
    assert metadata["pending_reasons"] == {MISSING_GBP: 1}
    capsys.readouterr()
    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "pending 1" in status
    assert f"oldest pending: {GBP_APPLE} at 2026-11-29T23:30:00+00:00" in status
    assert f"old, {MISSING_GBP})" in status

    (configured["folder"] / "rates.csv").write_text(RATES_HEADER + EUR_RATE + GBP_RATE)
    passed, metadata = check_of(materialize(configured))
    assert passed and (metadata["pending"], metadata["accepted"]) == (0, 3)
    received = [r["event"] for r in configured["emulator"].received("amplitude")]
    gbp = [event for event in received if event["insert_id"] == GBP_APPLE]
    assert [(event["price"], event["currency"]) for event in gbp] == [(9.5123, "USD")]
    assert len(received) == 3


def test_an_unreadable_rates_table_is_one_line_for_preview_and_fails_the_step_once(
    configured, capsys
):
    use_rates_table(configured, "missing_rates")
    capsys.readouterr()
    assert main(["preview", "--integration", "amplitude_prod", "--date", "2026-11-29"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(
        "nami-pipelines preview: integration 'amplitude_prod': field 'revenue.rates_table': "
        "cannot read table missing_rates"
    )
    assert captured.out == ""
    result = materialize(configured, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "field 'revenue.rates_table'" in str(failure.event_specific_data.error)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert configured["emulator"].received("amplitude") == []
