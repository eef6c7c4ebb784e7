"""A transaction's price in the integration's one currency, gross or after the store's fee
(docs/amplitude.md#revenue, docs/mparticle.md#revenue).

Nothing is guessed: a transaction whose currency has no rate for its UTC day (or, in proceeds
mode, whose store has no fee configured) is held back with the reason and stays pending in the
ledger; the next run after the rate arrives sends it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from decimal import Decimal
from typing import Final

from nami_pipelines.destinations.converted_price import ConvertedPrice
from nami_pipelines.destinations.http import Unresolved
from nami_pipelines.destinations.outgoing import OutgoingEvent
from nami_pipelines.event_types import DEVICE_TRANSACTION
from nami_pipelines.events.model import NamiEvent
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

    def convert(self, event: NamiEvent) -> ConvertedPrice | str:
        """The transaction's converted price, or why it cannot be computed yet."""
        payload = event.payload
        original_currency = str(payload["currency"])
        currency = original_currency.strip().upper()
        day = event.occurred_at.astimezone(UTC).date()
        rate = ONE if currency == self.currency else self.rates.rate(day, currency)
        if rate is None:
            return f"no {currency or 'currency'} rate for {day.isoformat()}"
        unit_price = _decimal(payload["price"]) * rate
        fee = None
        if self.mode == PROCEEDS:
            platform = event.platform_type or "an unknown platform"
            fee = self.store_fees.get(platform)
            if fee is None:
                return f"no store fee for {platform} in revenue.store_fees"
            unit_price *= ONE - fee
        return ConvertedPrice(
            unit_price, self.currency, payload["price"], original_currency, rate, fee
        )


def with_converted_revenue(
    outgoing: Sequence[OutgoingEvent], conversion: RevenueConversion | None
) -> tuple[list[OutgoingEvent], list[Unresolved]]:
    """The events to send, each transaction carrying its converted price; and the transactions
    held back, grouped by reason, to be left pending. Without a conversion, all as they are."""
    if conversion is None:
        return list(outgoing), []
    ready: list[OutgoingEvent] = []
    held: dict[str, list[str]] = {}
    for item in outgoing:
        if item.event.event_type != DEVICE_TRANSACTION:
            ready.append(item)
            continue
        converted = conversion.convert(item.event)
        if isinstance(converted, str):
            held.setdefault(converted, []).append(item.event.event_id)
        else:
            ready.append(replace(item, revenue=converted))
    return ready, [Unresolved(tuple(ids), reason, 0) for reason, ids in held.items()]


def _decimal(value: int | float) -> Decimal:
    """A JSON number as the decimal it was written as (9.99, not 9.9900000000000002131)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))
