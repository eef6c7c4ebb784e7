"""Nami events as Amplitude HTTP V2 events, attribute updates as Identify API identifications
(docs/amplitude.md).

Amplitude needs a user id or a device id on every event; ids shorter than the project's minimum
are dropped from the event, as Amplitude itself would, and an event left with neither is skipped
with the reason rather than sent to be rejected.
"""

from collections.abc import Sequence
from typing import Any, Final

from nami_pipelines.api_limits import (
    AMPLITUDE_DEFAULT_MIN_ID_LENGTH,
    AMPLITUDE_MAX_ARRAY_ENTRIES,
    AMPLITUDE_MAX_PROPERTY_CHARS,
)
from nami_pipelines.config import AmplitudeIntegration
from nami_pipelines.destinations.converted_price import ConvertedPrice
from nami_pipelines.destinations.limits import trim_list
from nami_pipelines.destinations.outgoing import (
    EPOCH,
    MILLISECOND,
    NAMI_USER_ID,
    OCCURRED_AT,
    SANDBOX,
    AttributeUpdateTarget,
    OutgoingEvents,
    Row,
    Skipped,
    event_attributes,
    total_amount,
)
from nami_pipelines.destinations.selection import (
    SANDBOX_DROPPED_REASON,
    absent_id,
    chosen_id,
    id_chooser,
    missing_id_reason,
    sandbox_dropped,
    usable_id,
)
from nami_pipelines.event_types import DEVICE_TRANSACTION, USER_EVENT_PREFIX
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


def build_amplitude_events(
    events: OutgoingEvents, integration: AmplitudeIntegration
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """The event bodies to send (each one's `insert_id` is its Nami event id) grouped by user,
    each user's in time order (input order among equal times), so `user_properties` reach a
    profile in the order they happened and a user's events travel together; and those that
    cannot be sent, with the reason. Delivery reads events in this order already, so the sort
    is only a check, and the ledger rows a request resolves lie side by side.

    One loop, with what the integration decides computed once: the ids of a user's events are
    only worked out again when they change from the event before."""
    rows, payloads, attributes = events.rows, events.payloads, events.attributes
    revenue = events.revenue
    renames = integration.event_renames
    drop_sandbox = integration.sandbox == "drop"
    min_length = integration.min_id_length or AMPLITUDE_DEFAULT_MIN_ID_LENGTH
    choose = id_chooser(integration.user_id, integration.fallback_to_nami_user_id)
    limit = AMPLITUDE_MAX_PROPERTY_CHARS
    platforms = PLATFORMS
    mapped: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    last_device: str | None = None
    usable_device: str | None = None
    for position in _user_and_time_order(rows):
        row = rows[position]
        (
            event_id,
            event_type,
            occurred_at,
            _,
            _,
            app_platform_id,
            platform_type,
            user,
            external_id,
            device_id,
            environment,
            payload_json,
        ) = row
        if drop_sandbox and environment == SANDBOX:
            skipped.append(Skipped(event_id, user, SANDBOX_DROPPED_REASON))
            continue
        payload = payloads[position]
        user_event = event_type.startswith(USER_EVENT_PREFIX)
        if not device_id:
            device_id = (
                _user_event_device(payload, app_platform_id, platform_type) if user_event else None
            )
        if device_id != last_device:
            last_device, usable_device = device_id, usable_id(device_id)
        user_id = choose(external_id, user)
        has_user = user_id is not None and len(user_id) >= min_length
        has_device = usable_device is not None and len(usable_device) >= min_length
        if not (has_user or has_device):
            reason = _no_ids_reason(
                integration, external_id, user, user_id, device_id, usable_device, min_length
            )
            skipped.append(Skipped(event_id, user, reason))
            continue
        body: dict[str, Any] = {
            "event_type": renames.get(event_type, event_type) if renames else event_type,
            "time": (occurred_at - EPOCH) // MILLISECOND,
            "insert_id": event_id,
        }
        if has_user:
            body["user_id"] = user_id
        if has_device:
            body["device_id"] = usable_device
        platform = platforms.get(platform_type, platform_type)
        if platform is not None:
            body["platform"] = platform
        properties = event_attributes(
            event_type, platform_type, app_platform_id, payload, limit, False, len(payload_json)
        )
        if environment == SANDBOX:
            properties[ENVIRONMENT_PROPERTY] = SANDBOX
        body["event_properties"] = properties
        if user_event:
            carried = attributes[position]
            if carried is not None:
                body["user_properties"] = amplitude_user_properties(carried)
        elif event_type == DEVICE_TRANSACTION:
            _add_revenue(body, payload, None if revenue is None else revenue[position])
        mapped.append(body)
    return mapped, skipped


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


def build_identifications(
    targets: Sequence[AttributeUpdateTarget], integration: AmplitudeIntegration
) -> list[tuple[str | None, dict[str, Any]]]:
    """The identifications of the updates that can be sent, each with its user (those that
    cannot are left out: the user's next event carries the attributes anyway)."""
    return [
        (target.nami_user_id, identification)
        for target in targets
        if isinstance(identification := build_identification(target, integration), dict)
    ]


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
        if value is True or value is False:
            properties[name] = value
        elif value is not None:
            properties[name] = trim_list(
                value, AMPLITUDE_MAX_ARRAY_ENTRIES, AMPLITUDE_MAX_PROPERTY_CHARS
            )
    return properties


def _user_event_device(
    payload: dict[str, Any], app_platform_id: str | None, platform_type: str | None
) -> str | None:
    """The device a `user.*` event happened on, which the event itself does not say: the one
    device of the user's payload `devices[]` on the event's app platform (its platform type when
    the app platform is unknown), or None when there is none or more than one. A wrong device id
    would merge another install into this profile; no device id costs nothing when there is a
    user id, and when there is none it is the only way the event can be sent."""
    found: str | None = None
    for device in payload.get("devices") or ():
        platform = device.get("platform") or {}
        if app_platform_id is not None:
            matches = platform.get("id") == app_platform_id
        else:
            matches = platform_type is not None and (platform.get("platform_type") == platform_type)
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
    return _no_ids_reason(
        integration, external_id, nami_user_id, user_id, device_id, usable_device, min_length
    )


def _no_ids_reason(
    integration: AmplitudeIntegration,
    external_id: str | None,
    nami_user_id: str | None,
    user_id: str | None,
    device_id: str | None,
    usable_device: str | None,
    min_length: int,
) -> str:
    """Why neither id can be sent: each one missing, a placeholder or too short."""
    user_problem = (
        missing_id_reason(
            integration.user_id,
            integration.fallback_to_nami_user_id,
            "user_id",
            external_id,
            nami_user_id,
        )
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


def _user_and_time_order(rows: Sequence[Row]) -> Sequence[int]:
    """Positions of `rows` by user (no user first), then time, stable: only a check when they
    come in that order already, as delivery reads them."""
    last_user, last_at = "", None
    for row in rows:
        user, at = row[NAMI_USER_ID] or "", row[OCCURRED_AT]
        if user != last_user:
            if user < last_user:
                break
            last_user = user
        elif last_at is not None and at < last_at:
            break
        last_at = at
    else:
        return range(len(rows))
    return sorted(
        range(len(rows)), key=lambda p: (rows[p][NAMI_USER_ID] or "", rows[p][OCCURRED_AT])
    )


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
