"""The one definition of the Nami event types this project knows and sends (docs/input.md)."""

from typing import Final

USER_EVENT_PREFIX: Final = "user."
DEVICE_IMPRESSION: Final = "device.impression"
DEVICE_TRANSACTION: Final = "device.transaction"

SENDABLE_EVENT_TYPES: Final[tuple[str, ...]] = (
    DEVICE_IMPRESSION,
    DEVICE_TRANSACTION,
    "user.journey.trial.converted",
    "user.journey.trial.did_not_convert",
    "user.journey.trial.started",
    "user.subscription.cancelled",
    "user.subscription.expired",
    "user.subscription.in_grace_period",
    "user.subscription.paused",
    "user.subscription.purchased",
    "user.subscription.renewal_in_grace_period",
    "user.subscription.renewed",
    "user.subscription.resumed",
)

KNOWN_EVENT_TYPES: Final[frozenset[str]] = frozenset(SENDABLE_EVENT_TYPES)

# Types Nami emits that no destination takes: acknowledged and counted, never quarantined.
UNSENT_EVENT_TYPES: Final[tuple[str, ...]] = (
    "device.session.start",
    "device.session.end",
    "purchase.updated",
)


def is_user_event(event_type: str) -> bool:
    """`user.*` events carry the user's whole state; they drive the attribute snapshot."""
    return event_type.startswith(USER_EVENT_PREFIX)


# The booleans of a `user.*` payload's `customer_journey_state`, in Nami's order.
JOURNEY_STATE_FLAGS: Final[tuple[str, ...]] = (
    "former_subscriber",
    "in_grace_period",
    "in_trial_period",
    "in_intro_offer_period",
    "in_pause",
    "is_cancelled",
    "in_account_hold",
)
