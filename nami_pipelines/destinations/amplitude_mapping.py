"""Nami events as Amplitude HTTP V2 events, attribute updates as Identify API identifications
(docs/amplitude.md).

Amplitude needs a user id or a device id on every event; ids shorter than the project's minimum
are dropped from the event, as Amplitude itself would, and an event left with neither is skipped
with the reason rather than sent to be rejected.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from nami_pipelines.api_limits import (
    AMPLITUDE_DEFAULT_MIN_ID_LENGTH,
    AMPLITUDE_MAX_ARRAY_ENTRIES,
    AMPLITUDE_MAX_PROPERTY_CHARS,
)
from nami_pipelines.config import AmplitudeIntegration
from nami_pipelines.destinations.converted_price import ConvertedPrice
from nami_pipelines.destinations.limits import trim, trim_list
from nami_pipelines.destinations.outgoing import (
    SANDBOX,
    AttributeUpdateTarget,
    OutgoingEvent,
    Skipped,
    epoch_ms,
    event_attributes,
    total_amount,
)
from nami_pipelines.destinations.selection import (
    SANDBOX_DROPPED_REASON,
    absent_id,
    chosen_id,
    missing_id_reason,
    sandbox_dropped,
    usable_id,
)
from nami_pipelines.event_types import DEVICE_TRANSACTION, is_user_event
from nami_pipelines.events.model import NamiEvent
from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES, UserAttributes

# Amplitude's `platform` as its own SDKs report it, so Nami's events line up with the app's.
# Amazon Appstore apps run on Fire OS, where Amplitude's Android SDK reports "Android".
PLATFORMS: Final[dict[str, str]] = {
    "apple": "iOS",
    "google": "Android",
    "amazon": "Android",
    "roku": "Roku",
    "web": "Web",
}
REVENUE_TYPE: Final = "purchase"
# Event property that marks sandbox events (Amplitude has no environment of its own).
ENVIRONMENT_PROPERTY: Final = "environment"


@dataclass(slots=True)  # one per event sent: not frozen, see `NamiEvent`
class AmplitudeEvent:
    """One event for the HTTP V2 API: its JSON `body` and the Nami event it carries."""

    body: dict[str, Any]
    event_id: str
    nami_user_id: str | None

    @property
    def event_ids(self) -> tuple[str, ...]:
        """The Nami events carried, as for an mParticle batch."""
        return (self.event_id,)


def build_amplitude_events(
    events: Sequence[OutgoingEvent], integration: AmplitudeIntegration
) -> tuple[list[AmplitudeEvent], list[Skipped]]:
    """The events to send grouped by user, each user's in time order (input order among equal
    times), so `user_properties` reach a profile in the order they happened and a user's events
    travel together; and those that cannot be sent, with the reason. Delivery reads events in
    this order already, so the sort costs a pass, and the ledger rows a request resolves lie
    side by side."""
    mapped: list[AmplitudeEvent] = []
    skipped: list[Skipped] = []
    for item in sorted(events, key=_user_and_time):
        result = amplitude_event(item, integration)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            mapped.append(result)
    return mapped, skipped


def amplitude_event(
    item: OutgoingEvent, integration: AmplitudeIntegration
) -> AmplitudeEvent | Skipped:
    """One event as Amplitude takes it, or why it cannot be sent."""
    event = item.event
    if sandbox_dropped(event.environment, integration.sandbox):
        return Skipped(event.event_id, event.nami_user_id, SANDBOX_DROPPED_REASON)
    ids = _ids(
        integration,
        event.external_id,
        event.nami_user_id,
        event.device_id or user_event_device(event),
        integration.min_id_length or AMPLITUDE_DEFAULT_MIN_ID_LENGTH,
    )
    if isinstance(ids, str):
        return Skipped(event.event_id, event.nami_user_id, ids)
    body: dict[str, Any] = {
        "event_type": integration.event_renames.get(event.event_type, event.event_type),
        "time": epoch_ms(event.occurred_at),
        "insert_id": event.event_id,
        **ids,
    }
    platform = PLATFORMS.get(event.platform_type or "", event.platform_type)
    if platform is not None:
        body["platform"] = platform
    properties = event_attributes(event, _property_value)
    if event.environment == SANDBOX:
        properties[ENVIRONMENT_PROPERTY] = SANDBOX
    body["event_properties"] = properties
    if event.event_type == DEVICE_TRANSACTION:
        _add_revenue(body, event.payload, item.revenue)
    if item.attributes is not None and is_user_event(event.event_type):
        body["user_properties"] = amplitude_user_properties(item.attributes)
    return AmplitudeEvent(body, event.event_id, event.nami_user_id)


def build_identification(
    target: AttributeUpdateTarget, integration: AmplitudeIntegration
) -> dict[str, Any] | Skipped:
    """The Identify API `identification` for an attribute update: `$set`, so the attributes
    overwrite whatever the profile holds. The Identify API takes no `min_id_length`, so
    Amplitude's default minimum applies whatever the integration sets for events."""
    if sandbox_dropped(target.environment, integration.sandbox):
        return Skipped(None, target.nami_user_id, SANDBOX_DROPPED_REASON)
    ids = _ids(
        integration,
        target.external_id,
        target.nami_user_id,
        target.device_id,
        AMPLITUDE_DEFAULT_MIN_ID_LENGTH,
    )
    if isinstance(ids, str):
        return Skipped(None, target.nami_user_id, ids)
    return {**ids, "user_properties": {"$set": amplitude_user_properties(target.attributes)}}


def amplitude_request_options(integration: AmplitudeIntegration) -> dict[str, int] | None:
    """The HTTP V2 `options` the integration needs: `min_id_length` when it accepts ids
    shorter than Amplitude's default."""
    if integration.min_id_length is None:
        return None
    return {"min_id_length": integration.min_id_length}


def amplitude_user_properties(attributes: UserAttributes) -> dict[str, bool | list[str]]:
    """The `namiml_*` attributes as native booleans and arrays of strings, within limits."""
    properties: dict[str, bool | list[str]] = {}
    for name in ATTRIBUTE_NAMES:
        value = attributes.get(name)
        if isinstance(value, bool):
            properties[name] = value
        elif value is not None:
            properties[name] = trim_list(
                value, AMPLITUDE_MAX_ARRAY_ENTRIES, AMPLITUDE_MAX_PROPERTY_CHARS
            )
    return properties


def user_event_device(event: NamiEvent) -> str | None:
    """The device a `user.*` event happened on, which the event itself does not say: the one
    device of the user's payload `devices[]` on the event's app platform (its platform type when
    the app platform is unknown), or None when there is none or more than one. A wrong device id
    would merge another install into this profile; no device id costs nothing when there is a
    user id, and when there is none it is the only way the event can be sent."""
    if not is_user_event(event.event_type):
        return None
    found: str | None = None
    for device in event.payload.get("devices") or ():
        platform = device.get("platform") or {}
        if event.app_platform_id is not None:
            matches = platform.get("id") == event.app_platform_id
        else:
            matches = event.platform_type is not None and (
                platform.get("platform_type") == event.platform_type
            )
        if matches:
            if found is not None and device["id"] != found:
                return None
            found = device["id"]
    return found


def _ids(
    integration: AmplitudeIntegration,
    external_id: str | None,
    nami_user_id: str | None,
    device_id: str | None,
    min_length: int,
) -> dict[str, str] | str:
    """`user_id` and `device_id` that Amplitude accepts, or the reason there are none."""
    fallback = integration.fallback_to_nami_user_id
    user_id = chosen_id(integration.user_id, fallback, external_id, nami_user_id)
    usable_device = usable_id(device_id)
    ids: dict[str, str] = {}
    if user_id is not None and len(user_id) >= min_length:
        ids["user_id"] = user_id
    if usable_device is not None and len(usable_device) >= min_length:
        ids["device_id"] = usable_device
    if ids:
        return ids
    user_problem = (
        missing_id_reason(integration.user_id, fallback, "user_id", external_id, nami_user_id)
        if user_id is None
        else _too_short("user_id", user_id, min_length)
    )
    device_problem = (
        absent_id("device_id", device_id)
        if usable_device is None
        else _too_short("device_id", usable_device, min_length)
    )
    return f"{user_problem}; {device_problem}"


def _too_short(name: str, value: str, min_length: int) -> str:
    return f"{name} has {len(value)} characters, under the minimum of {min_length} (min_id_length)"


def _user_and_time(item: OutgoingEvent) -> tuple[str, datetime]:
    return item.event.nami_user_id or "", item.event.occurred_at


def _property_value(value: Any) -> Any:
    """Native JSON types; strings cut to Amplitude's property value limit."""
    return trim(value, AMPLITUDE_MAX_PROPERTY_CHARS) if isinstance(value, str) else value


def _add_revenue(
    body: dict[str, Any], payload: dict[str, Any], converted: ConvertedPrice | None
) -> None:
    """Amplitude's revenue fields: it takes `price` times `quantity` as the revenue, and adds
    up revenue of any currency as one, hence the conversion when the integration asks for it
    (the original price, currency and rate then travel in `event_properties`)."""
    quantity = payload.get("quantity", 1)
    body["quantity"] = quantity
    body["productId"] = payload["sku_ref_id"]
    body["revenueType"] = REVENUE_TYPE
    if converted is None:
        body["price"] = payload["price"]
        body["revenue"] = total_amount(payload["price"], quantity)
        body["currency"] = payload["currency"]
        return
    body["price"] = converted.price
    body["revenue"] = converted.total(quantity)
    body["currency"] = converted.currency
    body["event_properties"].update(converted.origin())
