"""What both mappings take in and give back, and what the docs say about an event for both APIs.

Delivery hands the mappings `OutgoingEvent`s (an event with the user's attributes as of it) and
`AttributeUpdateTarget`s (attributes to send with no event); whatever cannot be sent comes back
as a `Skipped` with a reason a person can act on, so nothing selected is lost silently
(docs/guarantees.md).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from nami_pipelines.destinations.converted_price import ConvertedPrice
from nami_pipelines.event_types import DEVICE_IMPRESSION, DEVICE_TRANSACTION, is_user_event
from nami_pipelines.events.model import NamiEvent
from nami_pipelines.snapshots.attributes import UserAttributes

SANDBOX: Final = "sandbox"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


@dataclass(slots=True)  # one per event sent: not frozen, see `NamiEvent`
class OutgoingEvent:
    """One event to send; `attributes` are the user's `namiml_*` as of this event for `user.*`
    events (docs/attributes.md) and None for device events, which carry no attributes;
    `revenue` is a transaction's price in the integration's currency, when it converts."""

    event: NamiEvent
    attributes: UserAttributes | None = None
    revenue: ConvertedPrice | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event (or, with `event_id` None, an attribute update) that is not sent, and why."""

    event_id: str | None
    nami_user_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class AttributeUpdateTarget:
    """A user's attributes to send on their own (an "attribute update", docs/attributes.md).

    `as_of` is the snapshot instant the attributes hold at. mParticle deduplicates on the
    batch's `source_request_id`, which is derived from it: give it, or an update back to an
    earlier state (A, then B, then A again) gets the id of the first one.
    """

    nami_user_id: str | None
    external_id: str | None
    device_id: str | None
    environment: str
    attributes: UserAttributes
    as_of: datetime | None = None


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (a float timestamp can be off by one)."""
    return (moment - _EPOCH) // _MILLISECOND


def total_amount(price: float, quantity: int) -> float:
    """`price` times `quantity` in decimal, so 9.99 times 3 is 29.97 and not 29.970000000000002."""
    if isinstance(price, int):
        return price * quantity
    return float(Decimal(repr(price)) * quantity)


# The custom attributes per kind of event, sent to both APIs (docs/mparticle.md and
# docs/amplitude.md list the same ones). Each entry: (attribute name, payload field it comes from).
_IMPRESSION_FIELDS: Final = (
    ("app_env", "app_env"),
    ("controller_name", "controller_name"),
    ("cta_type", "cta_type"),
    ("developer_paywall_id", "developer_paywall_id"),
    ("initiator", "initiator"),
    ("id", "id"),
    ("name", "name"),
)
_TRANSACTION_FIELDS: Final = (
    ("app_env", "app_env"),
    ("locale", "locale"),
    ("impression_id", "impression_id"),
    ("original_transaction_id", "original_transaction_id"),
    ("purchase_env", "purchase_env"),
    ("source", "source"),
    ("subscription_interval", "subscription_interval"),
    # The name Nami's feed uses, misspelling included, so existing audiences keep working.
    ("subcription_interval_count", "subscription_interval_count"),
)


def event_attributes(event: NamiEvent, convert: Callable[[Any], Any]) -> dict[str, Any]:
    """The custom attributes (docs/mparticle.md) of `event`, each value passed through
    `convert` (the receiving API's typing and trimming); absent and null values are left out."""
    payload = event.payload
    if is_user_event(event.event_type):
        attributes = {
            "namiml_event_category": "user",
            "namiml_event_subcategory1": "subscription",
        }
        if event.platform_type is not None:
            attributes["event_platform"] = convert(event.platform_type)
        return attributes
    attributes = {"namiml_event_category": "device"}
    if event.event_type == DEVICE_IMPRESSION:
        if event.app_platform_id is not None:
            attributes["app_platform_id"] = convert(event.app_platform_id)
        fields = _IMPRESSION_FIELDS
    elif event.event_type == DEVICE_TRANSACTION:
        fields = _TRANSACTION_FIELDS
    else:
        raise ValueError(f"event {event.event_id} has an unknown type {event.event_type!r}")
    for name, source in fields:
        value = payload.get(source)
        if value is not None:
            attributes[name] = convert(value)
    return attributes
