"""One sample user's life in the app: who they are, their sessions, paywalls and purchases.

A user is drawn from their own random stream before anything happens (app, environment, market,
identity, devices), then walked session by session; a purchase hands over to the subscription
journey (`journeys.py`). Everything is collected as records and sorted by time at the end.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Final

from nami_pipelines.event_types import DEVICE_IMPRESSION, DEVICE_TRANSACTION
from nami_pipelines.samples.catalogue import (
    APP_PLATFORM_IDS,
    BROWSING_PAYWALLS,
    FEATURE_GATE,
    INTRO_OFFER,
    MARKET_WEIGHTS,
    MARKETS,
    ONBOARDING,
    PRODUCTION_APP_ID,
    SETTINGS,
    SKUS,
    STAGING_APP_ID,
    TRIAL_OFFER,
    WINBACK,
    Market,
    Paywall,
)
from nami_pipelines.samples.ids import EventIds, uuid4_string
from nami_pipelines.samples.journeys import Subscription, TransactionStep, UserStep

# Who the users are.
STAGING_APP_SHARE = 0.08
SANDBOX_SHARE = {PRODUCTION_APP_ID: 0.015, STAGING_APP_ID: 0.8}  # testers, QA builds
GOOGLE_SHARE = 0.45
EXTERNAL_ID_FROM_START_SHARE = 0.55
EXTERNAL_ID_AFTER_LOGIN_SHARE = 0.2  # the rest never log in
SECOND_DEVICE_SHARE = 0.2
OTHER_PLATFORM_SHARE = 0.4  # of second devices; only for users with an external id
EXISTING_SUBSCRIBER_SHARE = 0.2

# What new users do, and which sku they pick for it.
NEW_USER_JOURNEYS: Final = ("browse", "trial_converts", "trial_lapses", "paid", "intro")
NEW_USER_JOURNEY_WEIGHTS: Final = (45, 12, 11, 19, 13)
SKU_WEIGHTS: Final[dict[str, tuple[int, int, int]]] = {  # weekly, monthly, annual
    "existing": (25, 50, 25),
    "trial_converts": (15, 35, 50),
    "trial_lapses": (15, 35, 50),
    "paid": (30, 45, 25),
    "intro": (40, 60, 0),
}
SKU_ORDER: Final = ("premium_weekly", "premium_monthly", "premium_annual")
PURCHASE_SESSION_WEIGHTS: Final = (30, 30, 20, 20)  # the session (0, 1, 2, 3) a buyer buys in
PAYWALL_PURCHASE_SHARE = 0.9  # the rest buy from the app's own screens, with no impression

# How people use the app.
MEAN_SESSION_GAP_HOURS: Final = (4, 8, 16, 36)
MEAN_APP_LIFETIME_DAYS = 45
IMPRESSION_CHANCES: Final = (0.6, 0.2)  # a 1st and a 2nd paywall in a session, if not subscribed
SUBSCRIBER_IMPRESSION_CHANCE = 0.03  # upsell paywalls in settings
ONBOARDING_IMPRESSION_CHANCE = 0.85
WINBACK_SHARE = 0.5  # of paywalls shown to users whose subscription ended
UNKNOWN_INITIATOR_SHARE = 0.05  # older SDKs do not report who opened the paywall


PURCHASE_PAYWALLS: Final[dict[str, tuple[Paywall, ...]]] = {
    "trial_converts": (TRIAL_OFFER, ONBOARDING),
    "trial_lapses": (TRIAL_OFFER, ONBOARDING),
    "paid": (FEATURE_GATE, SETTINGS, ONBOARDING),
    "intro": (INTRO_OFFER,),
}


_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


def _seconds(rng: random.Random, low: int, high: int) -> timedelta:
    """A whole number of seconds: timestamps stay at second precision, as Nami sends them."""
    return timedelta(seconds=rng.randrange(low, high))


@dataclass(frozen=True, slots=True)
class _Device:
    """One install of the app; Nami knows it (and lists it on the user) from `first_seen`."""

    device_id: str
    platform: str
    app_platform_id: str
    first_seen: datetime

    def entry(self) -> dict[str, Any]:
        """The device as `user.*` payloads list it."""
        platform = {"id": self.app_platform_id, "platform_type": self.platform}
        return {"id": self.device_id, "platform": platform}


@dataclass(frozen=True, slots=True)
class _User:
    """Who the user is for the whole window; only what is known at a given moment is emitted."""

    nami_user_id: str
    app_id: str
    environment: str
    market: Market
    external_id: str | None
    identified_at: datetime  # from when the app knows the external id (login)
    devices: tuple[_Device, ...]

    def external_id_at(self, at: datetime) -> str | None:
        """Null before the login that set it: earlier events were sent without it."""
        return self.external_id if at >= self.identified_at else None

    def devices_at(self, at: datetime) -> tuple[_Device, ...]:
        """The devices Nami has seen for the user by then (payloads accumulate, never forget)."""
        return tuple(device for device in self.devices if device.first_seen <= at)


class UserRun:
    """Everything one user does in the window, collected as records to sort by time."""

    def __init__(self, rng: random.Random, window: tuple[datetime, datetime]) -> None:
        self._rng = rng
        self._window = window
        self._events: list[tuple[datetime, int, dict[str, Any]]] = []
        self._event_ids = EventIds()
        # The subscription's access window, once there is one: paywalls are rarely shown inside it.
        self._entitled_from: datetime | None = None
        self._lost_at: datetime | None = None
        self._existing = rng.random() < EXISTING_SUBSCRIBER_SHARE
        self._journey = "existing" if self._existing else self._draw_journey()
        self._user = self._draw_user()

    def records(self) -> list[dict[str, Any]]:
        """The user's events in time order (ties keep the order in which they happened)."""
        sessions = self._sessions()
        if self._existing:
            self._subscribe(self._user.devices[0], self._window[0], None)
        self._walk(sessions)
        self._events.sort(key=itemgetter(0, 1))
        return [record for _, _, record in self._events]

    # Who the user is.

    def _draw_journey(self) -> str:
        """A new user's intent; whether a buyer gets to buy depends on their sessions."""
        return self._rng.choices(NEW_USER_JOURNEYS, NEW_USER_JOURNEY_WEIGHTS)[0]

    def _draw_user(self) -> _User:
        """App, environment, market, identity and devices: fixed before anything happens."""
        rng = self._rng
        start, end = self._window
        app_id = STAGING_APP_ID if rng.random() < STAGING_APP_SHARE else PRODUCTION_APP_ID
        environment = "sandbox" if rng.random() < SANDBOX_SHARE[app_id] else "production"
        first_seen = (
            start - timedelta(days=rng.randrange(7, 400))
            if self._existing
            else _moment_between(rng, start, end)
        )
        identity = rng.random()
        # Drawn even for users who never log in, so the rest of their stream is unchanged.
        external_id: str | None = uuid4_string(rng)
        if identity < EXTERNAL_ID_FROM_START_SHARE:
            identified_at = first_seen
        elif identity < EXTERNAL_ID_FROM_START_SHARE + EXTERNAL_ID_AFTER_LOGIN_SHARE:
            identified_at = _moment_between(rng, max(first_seen, start) + _MINUTE, end)
        else:
            external_id, identified_at = None, end
        return _User(
            nami_user_id=uuid4_string(rng),
            app_id=app_id,
            environment=environment,
            market=rng.choices(MARKETS, MARKET_WEIGHTS)[0],
            external_id=external_id,
            identified_at=identified_at,
            devices=self._draw_devices(app_id, first_seen, external_id is not None),
        )

    def _draw_devices(
        self, app_id: str, first_seen: datetime, identified: bool
    ) -> tuple[_Device, ...]:
        """A first device; sometimes a second one later, on the other platform only for users
        Nami can merge across platforms, i.e. who log in with an external id."""
        rng = self._rng
        platform = "google" if rng.random() < GOOGLE_SHARE else "apple"
        devices = [self._device(app_id, platform, first_seen)]
        if rng.random() < SECOND_DEVICE_SHARE:
            if identified and rng.random() < OTHER_PLATFORM_SHARE:
                platform = "apple" if platform == "google" else "google"
            start, end = max(first_seen, self._window[0]), self._window[1]
            devices.append(self._device(app_id, platform, _moment_between(rng, start + _HOUR, end)))
        return tuple(devices)

    def _device(self, app_id: str, platform: str, first_seen: datetime) -> _Device:
        """A device of the user's app; its platform decides the app platform id."""
        return _Device(
            uuid4_string(self._rng), platform, APP_PLATFORM_IDS[app_id, platform], first_seen
        )

    # What the user does.

    def _sessions(self) -> list[tuple[datetime, _Device]]:
        """App launches until the user drops the app; a second device is used from its first day."""
        rng = self._rng
        first = self._user.devices[0].first_seen
        start, end = self._window
        at = first if first >= start else start + _seconds(rng, 0, 86_400)
        until = min(end, at + timedelta(days=rng.expovariate(1 / MEAN_APP_LIFETIME_DAYS)))
        mean_gap = 3600 * rng.choice(MEAN_SESSION_GAP_HOURS)
        times = []
        while at < until:
            times.append(at)
            at += timedelta(seconds=600 + int(rng.expovariate(1 / mean_gap)))
        times += [device.first_seen for device in self._user.devices[1:] if device.first_seen < end]
        return [(at, self._session_device(at)) for at in sorted(times)]

    def _session_device(self, at: datetime) -> _Device:
        """A new device's first session is on it; later sessions use any device of the user."""
        devices = self._user.devices_at(at)
        return devices[-1] if devices[-1].first_seen == at else self._rng.choice(devices)

    def _walk(self, sessions: list[tuple[datetime, _Device]]) -> None:
        """Paywalls shown session by session; buyers buy in one of their first sessions."""
        rng = self._rng
        buys_in = None
        if self._journey not in ("browse", "existing"):
            buys_in = rng.choices(range(len(PURCHASE_SESSION_WEIGHTS)), PURCHASE_SESSION_WEIGHTS)[0]
        for index, (at, device) in enumerate(sessions):
            if index == buys_in and self._buy(at, device):
                continue
            if self._entitled(at):
                chances: tuple[float, ...] = (SUBSCRIBER_IMPRESSION_CHANCE,)
            elif index == 0 and not self._existing:
                chances = (ONBOARDING_IMPRESSION_CHANCE,)
            else:
                chances = IMPRESSION_CHANCES
            for chance in chances:
                at += _seconds(rng, 20, 900)
                if rng.random() >= chance or at >= self._window[1]:
                    break
                self._impression(at, device, self._paywall_for(index, at))

    def _paywall_for(self, session_index: int, at: datetime) -> Paywall:
        """Onboarding first, upsell for subscribers, win-back for lapsed ones, else any offer."""
        if self._entitled(at):
            return SETTINGS
        if session_index == 0 and not self._existing:
            return ONBOARDING
        if self._lost_at is not None and at >= self._lost_at and self._rng.random() < WINBACK_SHARE:
            return WINBACK
        return self._rng.choice(BROWSING_PAYWALLS)

    def _buy(self, at: datetime, device: _Device) -> bool:
        """The purchase of this user's journey, from a paywall most of the time."""
        rng = self._rng
        bought_at = at + _seconds(rng, 15, 300)
        if bought_at + timedelta(seconds=1) >= self._window[1]:
            return False
        impression_id = None
        if rng.random() < PAYWALL_PURCHASE_SHARE:
            paywall = rng.choice(PURCHASE_PAYWALLS[self._journey])
            impression_id = self._impression(at, device, paywall)
        self._subscribe(device, bought_at, impression_id)
        return True

    def _subscribe(self, device: _Device, at: datetime, impression_id: str | None) -> None:
        """Walk the user's subscription and turn its steps into records on the buying device."""
        rng = self._rng
        sku = SKUS[rng.choices(SKU_ORDER, SKU_WEIGHTS[self._journey])[0]]
        user = self._user
        sub = Subscription(rng, sku, device.platform, user.market, user.environment, self._window)
        if self._journey == "existing":
            sub.continue_existing(_moment_between(rng, at + _MINUTE, sku.renewal_after(at)))
        elif self._journey.startswith("trial"):
            sub.start_trial(at, impression_id, converts=self._journey == "trial_converts")
        else:
            sub.start_paid(at, impression_id, intro=self._journey == "intro")
        self._entitled_from, self._lost_at = at, sub.lost_at
        for step in sub.steps:
            if isinstance(step, TransactionStep):
                self._add(step.at, DEVICE_TRANSACTION, device, device.device_id, step.payload)
            else:
                self._add_user_event(step, device)

    def _entitled(self, at: datetime) -> bool:
        """Whether the user had access at `at` (pauses aside): subscribers see few paywalls."""
        if self._entitled_from is None or at < self._entitled_from:
            return False
        return self._lost_at is None or at < self._lost_at

    # Records.

    def _impression(self, at: datetime, device: _Device, paywall: Paywall) -> str:
        """A paywall shown on a device; returns its id for the purchase it may lead to."""
        initiator = "unknown" if self._rng.random() < UNKNOWN_INITIATOR_SHARE else paywall.initiator
        payload = {
            "developer_paywall_id": paywall.developer_paywall_id,
            "name": paywall.name,
            "cta_type": paywall.cta_type,
            "controller_name": paywall.controller_names[device.platform],
            "initiator": initiator,
            "app_env": self._user.environment,
        }
        record = self._add(at, DEVICE_IMPRESSION, device, device.device_id, payload)
        # Nami's impression id is the event's id.
        record["payload"] = {"id": record["event_id"], **payload}
        return record["event_id"]

    def _add_user_event(self, step: UserStep, device: _Device) -> None:
        """A `user.*` record: the journey's state plus what Nami knows of the user by then."""
        user = self._user
        external_id = user.external_id_at(step.at)
        payload = step.payload_state()
        payload["customer_journey_state"] = step.journey_state
        payload["devices"] = [known.entry() for known in user.devices_at(step.at)]
        payload["external_ids"] = (
            [{"key": "external_id", "type": "uuid", "value": external_id}] if external_id else []
        )
        self._add(step.at, step.event_type, device, None, payload)

    def _add(
        self,
        at: datetime,
        event_type: str,
        device: _Device,
        device_id: str | None,
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        """One record in the input layout of docs/input.md, its id derived from its content;
        `device_id` is only set on `device.*` events."""
        user = self._user
        content = {
            "event_type": event_type,
            "occurred_at": at.isoformat(),
            "app_id": user.app_id,
            "app_platform_id": device.app_platform_id,
            "platform_type": device.platform,
            "nami_user_id": user.nami_user_id,
            "external_id": user.external_id_at(at),
            "device_id": device_id,
            "environment": user.environment,
            "payload": payload,
        }
        record = {"event_id": self._event_ids.id_for(content), **content}
        self._events.append((at, len(self._events), record))
        return record


def _moment_between(rng: random.Random, earliest: datetime, end: datetime) -> datetime:
    """A whole second in [earliest, end); `earliest` itself when that range is empty."""
    span = int((end - earliest).total_seconds())
    return earliest + timedelta(seconds=rng.randrange(span)) if span > 0 else earliest
