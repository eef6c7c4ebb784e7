"""What both mappings take in and give back, and what the docs say about an event for both APIs.

Delivery hands the mappings a chunk's `OutgoingEvents` (each event's row with its payload and
the user's attributes as of it, in parallel lists: no object per event) and
`AttributeUpdateTarget`s (attributes to send with no event); whatever cannot be sent comes back
as a `Skipped` with a reason a person can act on, so nothing selected is lost silently
(docs/guarantees.md).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from nami_pipelines.destinations.converted_price import ConvertedPrice
from nami_pipelines.destinations.limits import as_text
from nami_pipelines.event_types import DEVICE_IMPRESSION, DEVICE_TRANSACTION, USER_EVENT_PREFIX
from nami_pipelines.events.tables import ROW_POSITIONS
from nami_pipelines.snapshots.attributes import UserAttributes

SANDBOX: Final = "sandbox"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND: Final = timedelta(milliseconds=1)

# A row of `nami_events` as a plain tuple. The mappings and the state stage unpack it whole
# (one bytecode, where a lookup per field costs one each), in this column order; importing
# fails if the table ever orders its columns otherwise.
Row = tuple[Any, ...]
ROW_COLUMNS: Final = (
    "event_id",
    "event_type",
    "occurred_at",
    "loaded_seq",
    "app_id",
    "app_platform_id",
    "platform_type",
    "nami_user_id",
    "external_id",
    "device_id",
    "environment",
    "payload",
)
if tuple(ROW_POSITIONS) != ROW_COLUMNS:
    raise ImportError(f"nami_events columns changed: {tuple(ROW_POSITIONS)}")
EVENT_ID: Final = ROW_COLUMNS.index("event_id")
EVENT_TYPE: Final = ROW_COLUMNS.index("event_type")
OCCURRED_AT: Final = ROW_COLUMNS.index("occurred_at")
PLATFORM_TYPE: Final = ROW_COLUMNS.index("platform_type")
NAMI_USER_ID: Final = ROW_COLUMNS.index("nami_user_id")
EXTERNAL_ID: Final = ROW_COLUMNS.index("external_id")
DEVICE_ID: Final = ROW_COLUMNS.index("device_id")
ENVIRONMENT: Final = ROW_COLUMNS.index("environment")


@dataclass(slots=True)
class OutgoingEvents:
    """Events to send, as parallel lists: each event's row, its payload (parsed once, by the
    state stage) and, for `user.*` events, the user's `namiml_*` as of it (docs/attributes.md;
    None for device events, which carry no attributes). `revenue`, when the integration
    converts, holds each transaction's price in its currency (None for other events)."""

    rows: list[Row] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    attributes: list[UserAttributes | None] = field(default_factory=list)
    revenue: list[ConvertedPrice | None] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, positions: Sequence[int]) -> "OutgoingEvents":
        """The events at `positions`, in that order."""
        revenue = self.revenue
        return OutgoingEvents(
            [self.rows[p] for p in positions],
            [self.payloads[p] for p in positions],
            [self.attributes[p] for p in positions],
            None if revenue is None else [revenue[p] for p in positions],
        )


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
    return (moment - EPOCH) // MILLISECOND


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


def event_attributes(
    event_type: str,
    platform_type: str | None,
    app_platform_id: str | None,
    payload: dict[str, Any],
    limit: int,
    stringify: bool,
    payload_text_length: int | None = None,
) -> dict[str, Any]:
    """The custom attributes (docs/mparticle.md) of an event, absent and null values left out:
    strings cut to `limit` characters, and with `stringify` every value as text first (the
    receiving API's typing). The one loop both mappings run per event, so a value is only
    looked at again when it is not a string or may be over the limit: a string in the payload
    is never longer than the payload's JSON text, so when `payload_text_length` (that text's
    length) is within the limit, none of them is measured."""
    if event_type.startswith(USER_EVENT_PREFIX):
        attributes = {
            "namiml_event_category": "user",
            "namiml_event_subcategory1": "subscription",
        }
        if platform_type is not None:
            attributes["event_platform"] = platform_type[:limit]
        return attributes
    attributes = {"namiml_event_category": "device"}
    if event_type == DEVICE_IMPRESSION:
        if app_platform_id is not None:
            attributes["app_platform_id"] = app_platform_id[:limit]
        fields = _IMPRESSION_FIELDS
    elif event_type == DEVICE_TRANSACTION:
        fields = _TRANSACTION_FIELDS
    else:
        raise ValueError(f"event has an unknown type {event_type!r}")
    fits = payload_text_length is not None and payload_text_length <= limit
    get = payload.get
    for name, source in fields:
        value = get(source)
        if value is None:
            continue
        if value.__class__ is not str:
            if not stringify:
                attributes[name] = value
                continue
            value = as_text(value)
        elif fits:
            attributes[name] = value
            continue
        attributes[name] = value if len(value) <= limit else value[:limit]
    return attributes
