"""Revenue in one currency, gross or proceeds, over real HTTP to the emulators; a transaction
without a rate for its day is never sent until the rate arrives, then exactly once.

Expected amounts are worked out by hand from the fixed prices: 9.99 EUR at 1.08 is 10.7892 USD,
less a 15% fee 9.17082; 4.99 USD twice is 9.98, less 30% 3.493 each (6.986); 7.49 GBP at 1.27
is 9.5123.
"""

import pytest
import sqlalchemy as sa

from nami_pipelines.delivery.ledger import PENDING
from nami_pipelines.destinations.outcomes import ACCEPTED
from nami_pipelines_tests.builders import APP_ID
from nami_pipelines_tests.delivery.revenue_world import (
    EUR_APPLE,
    EUR_RATE,
    GBP_APPLE,
    GBP_RATE,
    USD_GOOGLE,
    RevenueWorld,
    load_transactions,
)


@pytest.fixture
def world(event_store, tmp_path, fresh_emulator, credentials_env) -> RevenueWorld:
    load_transactions(event_store, tmp_path)
    return RevenueWorld(event_store, fresh_emulator, tmp_path)


def revenue_fields(event: dict) -> tuple:
    return event["price"], event["quantity"], event["revenue"], event["currency"]


def test_amplitude_gross_is_in_the_target_currency_beside_the_original(world):
    rates = world.rates_file(EUR_RATE, GBP_RATE)
    report = world.deliver(world.amplitude(currency="USD", rates_file=rates))
    assert (report.accepted, report.unresolved) == (3, 0)
    events = world.amplitude_events()
    assert revenue_fields(events[EUR_APPLE]) == (10.7892, 1, 10.7892, "USD")
    assert revenue_fields(events[USD_GOOGLE]) == (4.99, 2, 9.98, "USD")
    assert revenue_fields(events[GBP_APPLE]) == (9.5123, 1, 9.5123, "USD")
    properties = events[EUR_APPLE]["event_properties"]
    assert (
        properties["original_price"],
        properties["original_currency"],
        properties["exchange_rate"],
    ) == (9.99, "EUR", 1.08)
    assert "store_fee" not in properties
    assert events[USD_GOOGLE]["event_properties"]["exchange_rate"] == 1.0
    assert events[EUR_APPLE]["productId"] == "premium_monthly"


def test_amplitude_proceeds_are_after_each_stores_fee(world):
    integration = world.amplitude(
        currency="USD",
        rates_file=world.rates_file(EUR_RATE, GBP_RATE),
        mode="proceeds",
        store_fees={"apple": 0.15, "google": 0.30},
    )
    world.deliver(integration)
    events = world.amplitude_events()
    assert revenue_fields(events[EUR_APPLE]) == (9.17082, 1, 9.17082, "USD")
    assert revenue_fields(events[USD_GOOGLE]) == (3.493, 2, 6.986, "USD")
    eur = events[EUR_APPLE]["event_properties"]
    assert (eur["original_price"], eur["original_currency"], eur["exchange_rate"]) == (
        9.99,
        "EUR",
        1.08,
    )
    assert (eur["store_fee"], events[USD_GOOGLE]["event_properties"]["store_fee"]) == (0.15, 0.3)


def test_without_a_revenue_block_amounts_go_as_the_store_charged(world):
    integration = world.integration(
        {
            "name": "amplitude_prod",
            "type": "amplitude",
            "app_id": APP_ID,
            "endpoint": world.emulator.url,
            "credentials": {"api_key_env": "AMPLITUDE_PROD_API_KEY"},
        }
    )
    world.deliver(integration)
    events = world.amplitude_events()
    assert revenue_fields(events[EUR_APPLE]) == (9.99, 1, 9.99, "EUR")
    assert revenue_fields(events[GBP_APPLE]) == (7.49, 1, 7.49, "GBP")
    assert "original_price" not in events[EUR_APPLE]["event_properties"]


def test_a_transaction_without_its_days_rate_waits_then_goes_out_once(world):
    integration = world.amplitude(currency="USD", rates_file=world.rates_file(EUR_RATE))
    first = world.deliver(integration)
    assert (first.accepted, first.unresolved) == (2, 1)
    assert first.reasons[PENDING] == {"no GBP rate for 2026-11-29": 1}
    assert set(world.amplitude_events()) == {EUR_APPLE, USD_GOOGLE}
    held = world.ledger_rows("amplitude_prod")[GBP_APPLE]
    assert (held["status"], held["reason"]) == (PENDING, "no GBP rate for 2026-11-29")

    again = world.deliver(integration)  # no rate yet: still held, nothing resent
    assert (again.accepted, again.unresolved, again.already_done) == (0, 1, 2)

    world.rates_file(EUR_RATE, GBP_RATE)  # the rate arrives; the same configuration
    after = world.deliver(integration)
    assert (after.accepted, after.unresolved, after.already_done) == (1, 0, 2)
    events = world.amplitude_events()
    assert revenue_fields(events[GBP_APPLE]) == (9.5123, 1, 9.5123, "USD")
    assert events[GBP_APPLE]["event_properties"]["exchange_rate"] == 1.27
    assert world.ledger_rows("amplitude_prod")[GBP_APPLE]["status"] == ACCEPTED
    assert world.deliver(integration).accepted == 0
    assert len(world.amplitude_events()) == 3
    assert world.emulator.stats()["amplitude"]["duplicate_events"] == 0


def create_rates_table(store, rows: list[tuple[str, str, float]]) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            sa.text("create table if not exists fx_rates (date date, currency text, rate numeric)")
        )
        for day, currency, rate in rows:
            connection.execute(
                sa.text("insert into fx_rates (date, currency, rate) values (:d, :c, :r)"),
                {"d": day, "c": currency, "r": rate},
            )


def test_rates_from_a_table_in_the_event_database(world):
    """On SQLite and PostgreSQL: the rate inserted after the first run is used by the next."""
    create_rates_table(world.store, [("2026-11-29", "EUR", 1.08), ("2026-11-28", "GBP", 1.5)])
    integration = world.amplitude(
        currency="USD", rates_table="fx_rates", mode="proceeds", store_fees={"apple": 0.15}
    )
    first = world.deliver(integration)
    # The day before's GBP rate is not the day's: nothing is guessed. Android has no fee set.
    assert first.reasons[PENDING] == {
        "no GBP rate for 2026-11-29": 1,
        "no store fee for google in revenue.store_fees": 1,
    }
    assert revenue_fields(world.amplitude_events()[EUR_APPLE]) == (9.17082, 1, 9.17082, "USD")
    create_rates_table(world.store, [("2026-11-29", "GBP", 1.27)])
    second = world.deliver(integration)
    assert (second.accepted, second.unresolved) == (1, 1)
    # 7.49 GBP at 1.27 is 9.5123, less 15%: 8.085455.
    assert revenue_fields(world.amplitude_events()[GBP_APPLE]) == (8.085455, 1, 8.085455, "USD")
    assert world.ledger_rows("amplitude_prod")[USD_GOOGLE]["status"] == PENDING


def test_a_negative_rate_in_the_table_stops_the_run_naming_the_integration_and_field(world):
    from nami_pipelines.config import IntegrationConfigError

    create_rates_table(world.store, [("2026-11-29", "EUR", -1.08)])
    integration = world.amplitude(currency="USD", rates_table="fx_rates")
    with pytest.raises(IntegrationConfigError) as raised:
        world.deliver(integration)
    message = str(raised.value)
    assert message.startswith("integration 'amplitude_prod': field 'revenue.rates_table': ")
    assert "rate -1.08 is not a positive number" in message
    assert world.amplitude_events() == {}


def test_a_missing_rates_table_stops_the_run_naming_the_field(world):
    from nami_pipelines.config import IntegrationConfigError

    integration = world.amplitude(currency="USD", rates_table="no_such_rates")
    with pytest.raises(IntegrationConfigError, match=r"field 'revenue\.rates_table': cannot read"):
        world.deliver(integration)


def test_mparticle_keeps_the_store_currency_unless_asked_to_convert(world):
    rates = world.rates_file(EUR_RATE, GBP_RATE)
    world.deliver(world.mparticle(currency="USD", rates_file=rates))
    kept = world.mparticle_events()[EUR_APPLE]["data"]
    assert kept["currency_code"] == "EUR"
    assert kept["product_action"]["total_amount"] == 9.99
    assert kept["product_action"]["products"][0]["price"] == 9.99
    assert "original_price" not in kept["custom_attributes"]


def test_mparticle_converts_when_asked_with_the_same_rules(world):
    integration = world.mparticle(
        currency="USD",
        rates_file=world.rates_file(EUR_RATE),
        convert=True,
        mode="proceeds",
        store_fees={"apple": 0.15},
    )
    report = world.deliver(integration)
    assert report.reasons[PENDING] == {"no GBP rate for 2026-11-29": 1}
    converted = world.mparticle_events()
    assert set(converted) == {EUR_APPLE}  # the feed acts as iOS: the Android sale is not its
    data = converted[EUR_APPLE]["data"]
    assert data["currency_code"] == "USD"
    assert data["product_action"]["total_amount"] == 9.17082
    assert data["product_action"]["products"][0] == {
        "id": "premium_monthly",
        "name": "premium_monthly",
        "price": 9.17082,
        "quantity": 1,
    }
    attributes = data["custom_attributes"]
    assert (
        attributes["original_price"],
        attributes["original_currency"],
        attributes["exchange_rate"],
        attributes["store_fee"],
    ) == ("9.99", "EUR", "1.08", "0.15")
