"""Exchange rates per UTC day (docs/configuration.md#revenue): a CSV file `date,currency,rate` or
rows of a table, checked the same way, so a bad rate stops a run instead of reaching a report.

A rate is the number of units of the integration's currency one unit of `currency` bought on
`date`. Rates are kept as `Decimal`: 9.99 at 1.08 is 10.7892, not 10.789200000000001.
"""

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from nami_pipelines.currencies import is_currency_code

RATES_COLUMNS: Final = ("date", "currency", "rate")


class RatesError(ValueError):
    """A rates file or table that cannot be used, worded for the person who maintains it."""


@dataclass(frozen=True, slots=True)
class ExchangeRates:
    """Rates by (UTC day, currency); a lookup that finds none means none was published."""

    by_day: dict[tuple[date, str], Decimal] = field(default_factory=dict)

    def rate(self, day: date, currency: str) -> Decimal | None:
        return self.by_day.get((day, currency))


def read_rates_file(path: Path, target: str) -> ExchangeRates:
    """Every rate of a `date,currency,rate` CSV; raises `RatesError` at the first bad line."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RatesError(f"cannot read {path}: {error}") from None
    if not rows or tuple(cell.strip() for cell in rows[0]) != RATES_COLUMNS:
        raise RatesError(f"{path}: the first line must be the header {','.join(RATES_COLUMNS)}")
    numbered = (
        (f"{path} line {number}", row)
        for number, row in enumerate(rows[1:], start=2)
        if any(cell.strip() for cell in row)
    )
    return rates_from_rows(numbered, target)


def rates_from_rows(rows: Iterable[tuple[str, list[Any]]], target: str) -> ExchangeRates:
    """Rates from `(where, [date, currency, rate])` pairs (`where` names the line or row in
    errors); each day and currency may appear once, and the target currency only at 1."""
    by_day: dict[tuple[date, str], Decimal] = {}
    for where, row in rows:
        if len(row) != len(RATES_COLUMNS):
            raise RatesError(f"{where}: expected 3 values (date,currency,rate), found {len(row)}")
        day = _day(where, row[0])
        currency = str(row[1] or "").strip()
        if not is_currency_code(currency):
            raise RatesError(f"{where}: unknown currency code {currency!r} (ISO 4217, e.g. EUR)")
        rate = _rate(where, row[2])
        if currency == target and rate != 1:
            raise RatesError(f"{where}: the rate of {target} itself can only be 1, not {rate}")
        if (day, currency) in by_day:
            raise RatesError(f"{where}: a second {currency} rate for {day.isoformat()}")
        by_day[(day, currency)] = rate
    return ExchangeRates(by_day)


def _day(where: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    try:
        if len(text) != len("2026-11-29"):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise RatesError(f"{where}: date {text!r} is not a day as YYYY-MM-DD") from None


def _rate(where: str, value: Any) -> Decimal:
    text = "" if value is None else str(value).strip()
    if not text:
        raise RatesError(f"{where}: no rate")
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise RatesError(f"{where}: rate {text!r} is not a number") from None
    if not rate.is_finite() or rate <= 0:
        raise RatesError(f"{where}: rate {text} is not a positive number")
    return rate
