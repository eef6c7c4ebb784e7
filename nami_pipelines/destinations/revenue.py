"""A transaction's price in the integration's one currency, gross or after the store's fee
(docs/amplitude.md#revenue, docs/mparticle.md#revenue).

Nothing is guessed: a transaction whose currency has no rate for its UTC day (or, in proceeds
mode, whose store has no fee configured) is held back with the reason and stays pending in the
ledger; the next run after the rate arrives sends it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from nami_pipelines.destinations.converted_price import ConvertedPrice
from nami_pipelines.destinations.http import Unresolved
from nami_pipelines.destinations.outgoing import (
    EVENT_ID,
    EVENT_TYPE,
    OCCURRED_AT,
    PLATFORM_TYPE,
    OutgoingEvents,
)
from nami_pipelines.event_types import DEVICE_TRANSACTION
from nami_pipelines.exchange_rates import ExchangeRates

PROCEEDS: Final = "proceeds"
ONE: Final = Decimal(1)


@dataclass(frozen=True, slots=True)
class RevenueConversion:
    """An integration's revenue rules with the rates one run loaded (never a query per event)."""

    currency: str
    mode: str
    store_fees: Mapping[str, Decimal]
    rates: ExchangeRates

    def convert(
        self, occurred_at: datetime, platform_type: str | None, payload: dict[str, Any]
    ) -> ConvertedPrice | str:
        """The transaction's converted price, or why it cannot be computed yet."""
        original_currency = str(payload["currency"])
        currency = original_currency.strip().upper()
        day = occurred_at.astimezone(UTC).date()
        rate = ONE if currency == self.currency else self.rates.rate(day, currency)
        if rate is None:
            return f"no {currency or 'currency'} rate for {day.isoformat()}"
        unit_price = _decimal(payload["price"]) * rate
        fee = None
        if self.mode == PROCEEDS:
            platform = platform_type or "an unknown platform"
            fee = self.store_fees.get(platform)
            if fee is None:
                return f"no store fee for {platform} in revenue.store_fees"
            unit_price *= ONE - fee
        return ConvertedPrice(
            unit_price, self.currency, payload["price"], original_currency, rate, fee
        )


def with_converted_revenue(
    events: OutgoingEvents, conversion: RevenueConversion | None
) -> tuple[OutgoingEvents, list[Unresolved]]:
    """The events to send, each transaction with its converted price in `revenue`; and the
    transactions held back, grouped by reason, to be left pending. Without a conversion, the
    events as they are."""
    if conversion is None:
        return events, []
    revenue: list[ConvertedPrice | None] = []
    held: dict[str, list[str]] = {}
    held_at: set[int] = set()
    payloads = events.payloads
    for position, row in enumerate(events.rows):
        converted = None
        if row[EVENT_TYPE] == DEVICE_TRANSACTION:
            converted = conversion.convert(row[OCCURRED_AT], row[PLATFORM_TYPE], payloads[position])
            if isinstance(converted, str):
                held.setdefault(converted, []).append(row[EVENT_ID])
                held_at.add(position)
                converted = None
        revenue.append(converted)
    ready = OutgoingEvents(events.rows, payloads, events.attributes, revenue)
    if held_at:
        ready = ready.take([p for p in range(len(ready)) if p not in held_at])
    return ready, [Unresolved(tuple(ids), reason, 0) for reason, ids in held.items()]


def _decimal(value: int | float) -> Decimal:
    """A JSON number as the decimal it was written as (9.99, not 9.9900000000000002131)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))
