"""Subscription journeys for the sample-event generator: a subscription's state machine.

A journey is walked forward in time the way a store would bill it (trial, intro price, renewals,
billing retry, pause, cancellation, expiry), and every state change is recorded as the `user.*`
event Nami would emit, with the whole state it carries, plus the `device.transaction` the SDK sees
for each charge. Keeping the rules here, apart from the record assembly, keeps every payload of a
journey consistent by construction: each event is a snapshot of one state that only this class
changes.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nami_pipelines.event_types import JOURNEY_STATE_FLAGS, KNOWN_EVENT_TYPES
from nami_pipelines.samples.catalogue import Market, Sku

ENTITLEMENT_REF_ID = "premium"
TRIAL_LENGTH = timedelta(days=7)
# Transactions are seen by the SDK first; Nami's user.* events follow a second later (as in the
# sample file), so a transaction always sorts before the state change it caused.
USER_EVENT_LAG = timedelta(seconds=1)


def _known(event_type: str) -> str:
    """A name from the project's vocabulary; a typo fails at import, not in a downstream test."""
    if event_type not in KNOWN_EVENT_TYPES:
        raise ValueError(f"{event_type} is not a known Nami event type")
    return event_type


TRIAL_CONVERTED = _known("user.journey.trial.converted")
TRIAL_DID_NOT_CONVERT = _known("user.journey.trial.did_not_convert")
TRIAL_STARTED = _known("user.journey.trial.started")
CANCELLED = _known("user.subscription.cancelled")
EXPIRED = _known("user.subscription.expired")
IN_GRACE_PERIOD = _known("user.subscription.in_grace_period")
PAUSED = _known("user.subscription.paused")
PURCHASED = _known("user.subscription.purchased")
RENEWAL_IN_GRACE_PERIOD = _known("user.subscription.renewal_in_grace_period")
RENEWED = _known("user.subscription.renewed")
RESUMED = _known("user.subscription.resumed")

# Transaction `source`: bought from a Nami paywall, elsewhere in the app, or billed by the store.
SOURCE_PAYWALL = "nami_triggered"
SOURCE_APP = "external"
SOURCE_STORE = "marketplace"

# How journeys branch. Pauses and billing retries are rarer in real life than here: the rates are
# raised so that a thousand users reliably show every event type (a few hundred usually do).
TRIAL_CANCEL_SHARE = 0.8  # trials that do not convert were mostly cancelled before the end
CANCEL_PER_PERIOD = {"week": 0.10, "month": 0.18, "year": 0.08}
BILLING_ISSUE_RATE = 0.09
GRACE_RECOVERY_RATE = 0.7
PAUSE_RATE = 0.15  # Google Play only
EXPIRED_EVENT_MISSING_RATE = 0.15  # a cancelled sub sometimes lapses without an `expired` event
PAUSE_LENGTHS_DAYS = (7, 14, 30, 60)  # what Google Play offers, up to two months
PAUSE_LENGTH_WEIGHTS = (50, 25, 15, 10)
EARLY_RESUME_SHARE = 0.3  # subscribers may resume before the pause they chose ends


def grace_length(platform: str, sku: Sku) -> timedelta:
    """Billing-retry grace: App Store 6 days for weekly, else 16; Google Play 3, else 7."""
    weekly = sku.interval == "week"
    if platform == "apple":
        return timedelta(days=6 if weekly else 16)
    return timedelta(days=3 if weekly else 7)


def original_transaction_id(rng: random.Random, platform: str) -> str:
    """A store-shaped id: App Store numeric ids, Google Play order ids (GPA.xxxx-...)."""
    if platform == "google":
        return (
            f"GPA.33{rng.randrange(100):02d}-{rng.randrange(10_000):04d}-"
            f"{rng.randrange(10_000):04d}-{rng.randrange(100_000):05d}"
        )
    return f"2000000{rng.randrange(1_000_000_000):09d}"


@dataclass(frozen=True, slots=True)
class UserStep:
    """A `user.*` event and the state it carries (entitlement gone when `expiration` is None)."""

    at: datetime
    event_type: str
    sku: Sku
    platform: str
    expiration: datetime | None
    journey_state: dict[str, bool]

    def payload_state(self) -> dict[str, Any]:
        """The entitlement list of this state, shaped as Nami's `active_entitlements`."""
        if self.expiration is None:
            return {"active_entitlements": []}
        entitlement = {
            "entitlement_ref_id": ENTITLEMENT_REF_ID,
            "sku_ref_id": self.sku.ref_id,
            "expiration": self.expiration.isoformat(),
            "purchase_platform": self.platform,
        }
        return {"active_entitlements": [entitlement]}


@dataclass(frozen=True, slots=True)
class TransactionStep:
    """A charge the SDK reports as `device.transaction` on the purchasing device."""

    at: datetime
    payload: dict[str, Any]


Step = UserStep | TransactionStep


class Subscription:
    """One subscription walked forward in time; `steps` collects what falls inside the window.

    The state (entitlement expiration and the seven journey flags) changes only through the
    methods below, and each change is recorded with a copy of the whole state, so a payload can
    never contradict the journey that produced it.
    """

    def __init__(
        self,
        rng: random.Random,
        sku: Sku,
        platform: str,
        market: Market,
        environment: str,
        window: tuple[datetime, datetime],
    ) -> None:
        self.steps: list[Step] = []
        # When the user last lost access without regaining it inside the window (None: still has
        # it, or never had it). Paywalls are shown again from then on.
        self.lost_at: datetime | None = None
        self._rng = rng
        self._sku = sku
        self._platform = platform
        self._market = market
        self._environment = environment
        self._start, self._end = window
        self._expiration: datetime | None = None
        self._flags = dict.fromkeys(JOURNEY_STATE_FLAGS, False)
        self._original_transaction_id = original_transaction_id(rng, platform)
        self._charges = 0
        self._intro = False

    # Entry points: how the subscription began.

    def start_trial(self, at: datetime, impression_id: str | None, converts: bool) -> None:
        """A 7-day free trial: cancelled and not converted, or billed at its end."""
        self._purchase(at, impression_id, price=self._sku.price(self._market.currency, False))
        self._flags["in_trial_period"] = True
        self._expiration = at + TRIAL_LENGTH
        self._user_event(at + USER_EVENT_LAG, TRIAL_STARTED)
        self._user_event(at + USER_EVENT_LAG, PURCHASED)
        trial_end = self._expiration
        if not converts and self._rng.random() < TRIAL_CANCEL_SHARE:
            self._cancel_between(at + USER_EVENT_LAG, trial_end)
        self._flags["in_trial_period"] = False
        if not converts:
            self._lose_access(trial_end, TRIAL_DID_NOT_CONVERT)
            return
        self._charge(trial_end)
        self._user_event(trial_end, TRIAL_CONVERTED)
        self._user_event(trial_end, RENEWED)
        self._run_paid_periods(trial_end)

    def start_paid(self, at: datetime, impression_id: str | None, intro: bool) -> None:
        """A direct purchase, at the introductory price when `intro`."""
        self._intro = intro
        self._flags["in_intro_offer_period"] = intro
        self._purchase(at, impression_id, price=self._sku.price(self._market.currency, intro))
        self._expiration = self._sku.renewal_after(at)
        self._user_event(at + USER_EVENT_LAG, PURCHASED)
        self._run_paid_periods(at)

    def continue_existing(self, renews_at: datetime) -> None:
        """A subscriber from before the window, whose current period ends at `renews_at`."""
        self._charges = self._rng.randrange(2, 13)  # renewals before the window, past any offer
        self._expiration = renews_at
        period_start = renews_at - (self._sku.renewal_after(renews_at) - renews_at)
        self._run_paid_periods(period_start)

    # The billing loop.

    def _run_paid_periods(self, period_start: datetime) -> None:
        """Each billing period: maybe a cancellation, then renewal, billing retry or pause."""
        while self._expiration is not None:
            due = self._expiration
            if self._rng.random() < CANCEL_PER_PERIOD[self._sku.interval]:
                self._cancel_between(period_start, due)
                self._expire_cancelled(due)
                return
            if due >= self._end:
                return
            period_start = self._next_period(due)

    def _next_period(self, due: datetime) -> datetime:
        """What happens when a period ends; returns when the next period started."""
        draw = self._rng.random()
        if draw < BILLING_ISSUE_RATE:
            return self._billing_retry(due)
        if self._can_pause() and draw < BILLING_ISSUE_RATE + PAUSE_RATE:
            return self._pause(due)
        self._charge(due)
        self._user_event(due, RENEWED)
        return due

    def _can_pause(self) -> bool:
        """Google Play lets subscribers pause; the App Store has no pause."""
        return self._platform == "google"

    def _billing_retry(self, due: datetime) -> datetime:
        """Payment failed: grace period, then recovered in it or lapsed at its end."""
        grace = grace_length(self._platform, self._sku)
        self._flags["in_grace_period"] = True
        self._expiration = due + grace
        self._user_event(due, IN_GRACE_PERIOD)
        self._flags["in_grace_period"] = False
        if self._rng.random() >= GRACE_RECOVERY_RATE:
            self._flags["former_subscriber"] = True
            # Google Play puts a failed payment on account hold; the App Store just lapses.
            self._flags["in_account_hold"] = self._platform == "google"
            self._lose_access(due + grace, EXPIRED)
            return due
        recovered = due + timedelta(seconds=self._rng.randrange(3600, int(grace.total_seconds())))
        # The App Store restarts the billing cycle on recovery; Google Play keeps the old anchor.
        anchor = recovered if self._platform == "apple" else due
        self._charge(recovered, new_expiration=self._sku.renewal_after(anchor))
        self._user_event(recovered, RENEWAL_IN_GRACE_PERIOD)
        return recovered

    def _pause(self, due: datetime) -> datetime:
        """Google Play pause from the renewal date; billing restarts when it resumes."""
        self._flags["in_pause"] = True
        self._lose_access(due, PAUSED)
        resumes = due + self._pause_length()
        if resumes >= self._end:
            return due
        self._flags["in_pause"] = False
        self.lost_at = None
        self._charge(resumes)
        self._user_event(resumes, RESUMED)
        return resumes

    def _pause_length(self) -> timedelta:
        """The pause the subscriber chose, or less when they resume early by hand."""
        days = self._rng.choices(PAUSE_LENGTHS_DAYS, PAUSE_LENGTH_WEIGHTS)[0]
        if self._rng.random() < EARLY_RESUME_SHARE:
            return timedelta(seconds=self._rng.randrange(86_400, days * 86_400))
        return timedelta(days=days)

    def _cancel_between(self, earliest: datetime, latest: datetime) -> None:
        """Auto-renew switched off at a random moment; the entitlement stays until it expires."""
        span = int((latest - earliest).total_seconds())
        self._flags["is_cancelled"] = True
        self._user_event(
            earliest + timedelta(seconds=self._rng.randrange(60, max(span, 61))), CANCELLED
        )

    def _expire_cancelled(self, due: datetime) -> None:
        """A cancelled subscription lapses at its expiration, not always with an event."""
        self._flags["former_subscriber"] = True
        if self._rng.random() < EXPIRED_EVENT_MISSING_RATE:
            self._expiration = None
            self.lost_at = due
            return
        self._lose_access(due, EXPIRED)

    # State changes that are recorded.

    def _purchase(self, at: datetime, impression_id: str | None, price: float) -> None:
        """The first charge, on a device, from a paywall impression or elsewhere in the app."""
        self._charges = 1
        source = SOURCE_PAYWALL if impression_id else SOURCE_APP
        self._transaction(at, self._original_transaction_id, price, impression_id, source)

    def _charge(self, at: datetime, new_expiration: datetime | None = None) -> None:
        """A renewal billed by the store: a new transaction under the same original id."""
        self._charges += 1
        self._flags["in_intro_offer_period"] = self._intro and (
            self._charges <= self._sku.intro_periods
        )
        self._expiration = new_expiration or self._sku.renewal_after(at)
        price = self._sku.price(self._market.currency, self._flags["in_intro_offer_period"])
        self._transaction(at, self._renewal_transaction_id(), price, None, SOURCE_STORE)

    def _renewal_transaction_id(self) -> str:
        """Google Play suffixes the order id per renewal; the App Store issues a new id."""
        if self._platform == "google":
            return f"{self._original_transaction_id}..{self._charges - 2}"
        return original_transaction_id(self._rng, self._platform)

    def _transaction(
        self,
        at: datetime,
        transaction_id: str,
        price: float,
        impression_id: str | None,
        source: str,
    ) -> None:
        """The transaction as the SDK reports it, in the storefront's currency and locale."""
        payload = {
            "transaction_id": transaction_id,
            "original_transaction_id": self._original_transaction_id,
            "sku_ref_id": self._sku.ref_id,
            "price": price,
            "currency": self._market.currency,
            "quantity": 1,
            "locale": self._market.locale(self._platform),
            "impression_id": impression_id,
            "purchase_env": self._environment,
            "source": source,
            "subscription_interval": self._sku.interval,
            "subscription_interval_count": self._sku.interval_count,
            "app_env": self._environment,
        }
        self._record(TransactionStep(at, payload))

    def _lose_access(self, at: datetime, event_type: str) -> None:
        """No entitlement any more (expiry, trial end, pause): no offer period either."""
        self._expiration = None
        self._flags["in_intro_offer_period"] = False
        self.lost_at = at
        self._user_event(at, event_type)

    def _user_event(self, at: datetime, event_type: str) -> None:
        """Nami's view of the state right now; the flags are copied so later changes don't leak."""
        step = UserStep(
            at, event_type, self._sku, self._platform, self._expiration, dict(self._flags)
        )
        self._record(step)

    def _record(self, step: Step) -> None:
        """Only what happens inside the window is emitted; the journey itself goes on."""
        if self._start <= step.at < self._end:
            self.steps.append(step)
