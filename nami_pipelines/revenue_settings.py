"""An integration's `revenue:` block (docs/configuration.md#revenue): the one currency revenue is
reported in, where the day's exchange rates come from, and gross or proceeds.

A rates file is read and checked here, at load, so a malformed one fails with the integration and
the field named; delivery reads it again at the start of every run, which is how rates added
since the definitions loaded are picked up.
"""

import re
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from nami_pipelines.currencies import is_currency_code
from nami_pipelines.exchange_rates import RatesError, read_rates_file

# Where relative `rates_file` paths start: the integrations file's folder, given as context.
BASE_DIR_CONTEXT: Final = "base_dir"
# A table name, optionally with its schema: never more, since it is put into a query.
_TABLE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
StorePlatform = Literal["apple", "google", "amazon", "roku", "web"]


class RevenueSettings(BaseModel):
    """Revenue in `currency`: the store's price times the rate of the transaction's UTC day, less
    the store's fee in `proceeds` mode. Field order matters: each check sees the fields above."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str
    rates_file: Path | None = None
    rates_table: str | None = None
    mode: Literal["gross", "proceeds"] = "gross"
    store_fees: dict[StorePlatform, Decimal] = Field(default_factory=dict, validate_default=True)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if not is_currency_code(value):
            raise ValueError(f"unknown currency code {value!r}: an ISO 4217 code such as USD")
        return value

    @field_validator("rates_file")
    @classmethod
    def _readable_rates(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        base = (info.context or {}).get(BASE_DIR_CONTEXT)
        path = value if value.is_absolute() or base is None else Path(base) / value
        target = info.data.get("currency")
        if target is not None:
            try:
                read_rates_file(path, target)
            except RatesError as error:
                raise ValueError(str(error)) from None
        return path

    @field_validator("rates_table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE_NAME.match(value):
            raise ValueError(f"{value!r} is not a table name (letters, digits, _; schema.table)")
        return value

    @field_validator("store_fees")
    @classmethod
    def _fees(cls, value: dict[str, Decimal], info: ValidationInfo) -> dict[str, Decimal]:
        for platform, fee in value.items():
            if not 0 <= fee < 1:
                raise ValueError(
                    f"the {platform} fee is {fee}: a share of the price, at least 0 and below 1 "
                    "(0.15 is 15%)"
                )
        if info.data.get("mode") == "proceeds" and not value:
            raise ValueError("proceeds mode needs the store fees, e.g. {apple: 0.15, google: 0.15}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "RevenueSettings":
        if (self.rates_file is None) == (self.rates_table is None):
            raise ValueError(
                "give rates_file (a CSV) or rates_table (a table in the event database), "
                "exactly one"
            )
        return self

    @property
    def converts(self) -> bool:
        """Amplitude always converts; an mParticle feed only when it asks to."""
        return True


class MParticleRevenue(RevenueSettings):
    """mParticle's commerce events carry their own `currency_code`, which mParticle's own
    forwarding understands; converting is asked for with `convert: true`."""

    convert: bool = False

    @property
    def converts(self) -> bool:
        return self.convert
