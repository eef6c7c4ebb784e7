"""The exchange rates one delivery run converts with, read once at its start: the integration's
rates file again (rates added since the definitions loaded count), or the rows of its rates table
in the event database for the run's day. Bad rates stop the run, naming the integration and the
field, exactly as they would at load."""

from datetime import date

from sqlalchemy import String, cast, column, select, table
from sqlalchemy.exc import SQLAlchemyError

from nami_pipelines.config import AnyIntegration, IntegrationConfigError
from nami_pipelines.destinations.revenue import RevenueConversion
from nami_pipelines.events.store import EventStore
from nami_pipelines.exchange_rates import (
    RATES_COLUMNS,
    ExchangeRates,
    RatesError,
    rates_from_rows,
    read_rates_file,
)
from nami_pipelines.revenue_settings import RevenueSettings


def revenue_conversion(
    integration: AnyIntegration, store: EventStore, day: date
) -> RevenueConversion | None:
    """How this run converts transactions, or None when the integration sends them as the
    store charged them (no `revenue:` block, or an mParticle feed without `convert: true`)."""
    settings = integration.revenue
    if settings is None or not settings.converts:
        return None
    field = "revenue.rates_file" if settings.rates_file is not None else "revenue.rates_table"
    try:
        rates = _rates(settings, store, day)
    except RatesError as error:
        raise IntegrationConfigError(
            f"integration '{integration.name}': field '{field}': {error}"
        ) from None
    return RevenueConversion(settings.currency, settings.mode, settings.store_fees, rates)


def _rates(settings: RevenueSettings, store: EventStore, day: date) -> ExchangeRates:
    if settings.rates_file is not None:
        return read_rates_file(settings.rates_file, settings.currency)
    assert settings.rates_table is not None
    return read_rates_table(store, settings.rates_table, settings.currency, day)


def read_rates_table(store: EventStore, name: str, target: str, day: date) -> ExchangeRates:
    """The rows of `name` (columns `date`, `currency`, `rate`) for `day`: one query per run.
    `date` may be a DATE or an ISO text column, so it is compared as text."""
    schema, _, table_name = name.rpartition(".")
    rates = table(table_name, *map(column, RATES_COLUMNS), schema=schema or None)
    query = select(rates.c.date, rates.c.currency, rates.c.rate).where(
        cast(rates.c.date, String) == day.isoformat()
    )
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(query).all()
    except SQLAlchemyError as error:  # a missing table or column: the driver's words, one line
        detail = " ".join(str(getattr(error, "orig", error)).split())[:300]
        raise RatesError(f"cannot read table {name}: {detail}") from None
    return rates_from_rows(
        ((f"table {name}, {row[1]} on {day.isoformat()}", list(row)) for row in rows), target
    )
