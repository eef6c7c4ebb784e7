"""What the sample app sells and shows: its apps and platforms, paywalls, markets and skus.

Fixed data only, shared by the user runs (`users.py`) and the subscription journeys
(`journeys.py`), so both name the same products.
"""

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

PRODUCTION_APP_ID: Final = "a7e1c5f0-2d3b-4c6a-9e8f-1b2c3d4e5f60"
STAGING_APP_ID: Final = "5b3f9d21-7c4e-4f8a-a6d0-2e9c1b7a4f35"
PLATFORMS: Final = ("apple", "google")
APP_PLATFORM_IDS: Final[dict[tuple[str, str], str]] = {
    (PRODUCTION_APP_ID, "apple"): "8d0f2b8e-1c1f-4a53-9d43-3f0a5b1c2e11",
    (PRODUCTION_APP_ID, "google"): "c3a9e7d2-6b4f-4e8a-b1d2-7f6e5d4c3b22",
    (STAGING_APP_ID, "apple"): "e6c2a8f4-3d1b-4a7e-9f05-8b4d2c6e1a93",
    (STAGING_APP_ID, "google"): "f19d7b3c-8e2a-4c65-b0f4-6a3e9d1c5b74",
}


@dataclass(frozen=True, slots=True)
class Paywall:
    """A paywall as the Control Center defines it, with its screen name on each platform."""

    developer_paywall_id: str
    name: str
    cta_type: str
    initiator: str
    controller_names: dict[str, str]


def _paywall(pid: str, name: str, cta: str, initiator: str, screen: str) -> Paywall:
    """iOS screens are view controllers, Android screens activities, named after the screen."""
    return Paywall(
        pid,
        name,
        cta,
        initiator,
        {"apple": f"{screen}ViewController", "google": f"{screen}Activity"},
    )


ONBOARDING = _paywall("onboarding_v3", "Onboarding paywall", "button", "nami_rules", "Onboarding")
FEATURE_GATE = _paywall("feature_gate_export", "Export feature gate", "button", "user", "Export")
SETTINGS = _paywall("settings_upgrade", "Settings upgrade", "link", "user", "Settings")
TRIAL_OFFER = _paywall("trial_7d", "7-day free trial", "button", "nami_ml", "TrialOffer")
INTRO_OFFER = _paywall("intro_offer_50", "Intro offer: 50% off", "banner", "nami_ml", "IntroOffer")
WINBACK = _paywall("winback_spring", "Win-back offer", "deeplink", "nami_rules", "Winback")
PAYWALLS: Final = (ONBOARDING, FEATURE_GATE, SETTINGS, TRIAL_OFFER, INTRO_OFFER, WINBACK)
BROWSING_PAYWALLS: Final = (FEATURE_GATE, SETTINGS, TRIAL_OFFER, INTRO_OFFER)


@dataclass(frozen=True, slots=True)
class Market:
    """Where a user buys: decides the currency and the locale reported on transactions."""

    country: str
    currency: str
    language: str

    def locale(self, platform: str) -> str:
        """StoreKit appends the storefront currency to the locale; Google Play does not."""
        if platform == "apple":
            return f"{self.language}@currency={self.currency}"
        return self.language


MARKETS: tuple[Market, ...] = (
    Market("US", "USD", "en_US"),
    Market("GB", "GBP", "en_GB"),
    Market("DE", "EUR", "de_DE"),
    Market("FR", "EUR", "fr_FR"),
)
MARKET_WEIGHTS: tuple[int, ...] = (55, 15, 18, 12)


@dataclass(frozen=True, slots=True)
class Sku:
    """A subscription product: billing interval and its price in each currency."""

    ref_id: str
    interval: str
    interval_count: int
    prices: Mapping[str, float]
    intro_prices: Mapping[str, float]
    intro_periods: int  # how many billing periods the introductory price lasts

    def price(self, currency: str, intro: bool) -> float:
        """What one period costs; the introductory price only while the offer lasts."""
        return (self.intro_prices if intro else self.prices)[currency]

    def renewal_after(self, at: datetime) -> datetime:
        """The next billing date: calendar months for monthly and annual skus, as stores do."""
        if self.interval == "week":
            return at + timedelta(weeks=self.interval_count)
        months = self.interval_count * (12 if self.interval == "year" else 1)
        return add_months(at, months)


SKUS: dict[str, Sku] = {
    sku.ref_id: sku
    for sku in (
        Sku(
            "premium_weekly",
            "week",
            1,
            {"USD": 2.99, "EUR": 2.99, "GBP": 2.49},
            {"USD": 0.99, "EUR": 0.99, "GBP": 0.99},
            4,
        ),
        Sku(
            "premium_monthly",
            "month",
            1,
            {"USD": 9.99, "EUR": 9.99, "GBP": 8.99},
            {"USD": 4.99, "EUR": 4.99, "GBP": 3.99},
            1,
        ),
        Sku(
            "premium_annual",
            "year",
            1,
            {"USD": 59.99, "EUR": 59.99, "GBP": 49.99},
            {"USD": 29.99, "EUR": 29.99, "GBP": 24.99},
            1,
        ),
    )
}


def add_months(at: datetime, months: int) -> datetime:
    """`at` plus whole calendar months, the day clamped to the month's end (Jan 31 -> Feb 28)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))
