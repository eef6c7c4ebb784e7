"""A transaction's price in an integration's currency: what `OutgoingEvents.revenue` carries to
the mappings when the integration converts revenue (destinations/revenue.py decides it)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class ConvertedPrice:
    """One unit's price in `currency`, and what it was computed from (sent beside it, so an
    analyst can always go back to what the store charged)."""

    unit_price: Decimal
    currency: str
    original_price: Any
    original_currency: str
    rate: Decimal
    store_fee: Decimal | None  # proceeds mode only

    @property
    def price(self) -> float:
        return float(self.unit_price)

    def total(self, quantity: int) -> float:
        """`unit_price` times `quantity`, in decimal."""
        return float(self.unit_price * quantity)

    def origin(self) -> dict[str, Any]:
        """The properties that keep the original: price, currency, rate, and the fee taken."""
        properties = {
            "original_price": self.original_price,
            "original_currency": self.original_currency,
            "exchange_rate": float(self.rate),
        }
        if self.store_fee is not None:
            properties["store_fee"] = float(self.store_fee)
        return properties
