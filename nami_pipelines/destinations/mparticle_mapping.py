"""Nami events and attribute updates as mParticle Events API batches (docs/mparticle.md).

A batch is one user in one environment. A user's events are cut into batches that each end at a
`user.*` event and carry `user_attributes` as of it, because mParticle applies a batch's
attributes to the profile it forwards the batch's events with: so every `user.*` event travels
with the attributes as of itself. Device events after a user's last `user.*` event go last,
without attributes. Every batch built here validates against the official draft-07 schema,
including the optional Nami user id identity (see `_with_nami_identity`).
"""

import functools
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

import orjson

from nami_pipelines.api_limits import (
    MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS,
    MPARTICLE_MAX_LIST_ENTRIES,
    MPARTICLE_MAX_LIST_ENTRY_CHARS,
)
from nami_pipelines.config import MParticleIntegration
from nami_pipelines.destinations.converted_price import ConvertedPrice
from nami_pipelines.destinations.limits import as_text, canonical_text, trim, trim_list
from nami_pipelines.destinations.mparticle_ids import message_id, request_id
from nami_pipelines.destinations.outgoing import (
    EPOCH,
    EVENT_ID,
    EVENT_TYPE,
    MILLISECOND,
    OCCURRED_AT,
    SANDBOX,
    AttributeUpdateTarget,
    OutgoingEvents,
    Skipped,
    event_attributes,
    total_amount,
)
from nami_pipelines.destinations.selection import (
    SANDBOX_DROPPED_REASON,
    chosen_id,
    id_chooser,
    missing_id_reason,
    sandbox_dropped,
    usable_id,
)
from nami_pipelines.event_types import (
    DEVICE_TRANSACTION,
    SENDABLE_EVENT_TYPES,
    USER_EVENT_PREFIX,
    is_user_event,
)
from nami_pipelines.snapshots.attributes import ATTRIBUTE_NAMES, UserAttributes

DEVELOPMENT: Final = "development"
PRODUCTION: Final = "production"


def _user_event_name(event_type: str) -> str:
    """`user.subscription.renewed` -> `renewed`, `user.journey.trial.converted` ->
    `trial_converted`: the names Nami's mParticle feed uses."""
    kind, _, action = event_type.removeprefix("user.").rpartition(".")
    return action if kind == "subscription" else f"{kind.rsplit('.', 1)[-1]}_{action}"


USER_EVENT_NAMES: Final[dict[str, str]] = {
    event_type: _user_event_name(event_type)
    for event_type in SENDABLE_EVENT_TYPES
    if is_user_event(event_type)
}
IMPRESSION_EVENT_NAME: Final = "impression"


class MParticleBatch(NamedTuple):
    """One batch (one user, one environment): its JSON `body` and the Nami events it carries,
    in order (empty for an attribute update). A tuple: one is made per batch, a few events
    each, and a frozen dataclass costs several times as much to build."""

    body: dict[str, Any]
    event_ids: tuple[str, ...]
    nami_user_id: str | None


# (mParticle environment, customer_id, nami_user_id): what one batch may not mix.
_BatchKey = tuple[str, str, str | None]


def build_mparticle_batches(
    events: OutgoingEvents, integration: MParticleIntegration
) -> tuple[list[MParticleBatch], list[Skipped]]:
    """The batches for `events`, users in order of first appearance, each user's batches in
    time order; and the events that cannot be sent, with the reason. A user's events come
    together in delivery, so the group of the event before is reused without a lookup."""
    rows = events.rows
    groups: dict[_BatchKey, list[int]] = {}
    skipped: list[Skipped] = []
    drop_sandbox = integration.sandbox == "drop"
    choose = id_chooser(integration.customer_id, integration.fallback_to_nami_user_id)
    group: list[int] | None = None
    last_user: str | None = None
    last_customer: str | None = None
    last_environment: str | None = None
    for position, row in enumerate(rows):
        event_id, _, _, _, _, _, _, user, external_id, _, environment, _ = row
        if drop_sandbox and environment == SANDBOX:
            skipped.append(Skipped(event_id, user, SANDBOX_DROPPED_REASON))
            continue
        customer_id = choose(external_id, user)
        if customer_id is None:
            reason = _missing_customer_id(integration, external_id, user)
            skipped.append(Skipped(event_id, user, reason))
            continue
        if (
            group is None
            or user != last_user
            or customer_id != last_customer
            or environment != last_environment
        ):
            last_user, last_customer, last_environment = user, customer_id, environment
            group = groups.setdefault((_environment(environment), customer_id, user), [])
        group.append(position)
    batches: list[MParticleBatch] = []
    for key, positions in groups.items():
        _user_batches(key, _in_time_order(rows, positions), events, integration, batches)
    return batches, skipped


def build_mparticle_attribute_batch(
    target: AttributeUpdateTarget, integration: MParticleIntegration
) -> MParticleBatch | Skipped:
    """An attribute update: a batch with `user_attributes` and no events (docs/mparticle.md)."""
    if sandbox_dropped(target.environment, integration.sandbox):
        return Skipped(None, target.nami_user_id, SANDBOX_DROPPED_REASON)
    customer_id = _customer_id(integration, target.external_id, target.nami_user_id)
    if customer_id is None:
        reason = _missing_customer_id(integration, target.external_id, target.nami_user_id)
        return Skipped(None, target.nami_user_id, reason)
    environment = _environment(target.environment)
    attributes = mparticle_user_attributes(target.attributes)
    as_of = "" if target.as_of is None else _instant_text(target.as_of)
    source_request_id = request_id(
        integration.name, "attributes", environment, customer_id, as_of, _values_text(attributes)
    )
    body = _batch_head(
        integration, environment, customer_id, target.nami_user_id, source_request_id
    )
    body["user_attributes"] = attributes
    return MParticleBatch(body, (), target.nami_user_id)


def build_mparticle_attribute_batches(
    targets: Sequence[AttributeUpdateTarget], integration: MParticleIntegration
) -> list[MParticleBatch]:
    """The attribute batches of the updates that can be sent (the others are left out: the
    user's next event carries the attributes anyway)."""
    return [
        batch
        for batch in (build_mparticle_attribute_batch(t, integration) for t in targets)
        if isinstance(batch, MParticleBatch)
    ]


@functools.lru_cache(maxsize=64)
def _instant_text(moment: datetime) -> str:
    """An update's instant in its request id: a chunk's updates share one, written once."""
    return moment.isoformat()


def _values_text(attributes: dict[str, str | list[str]]) -> str:
    """`canonical_text` of mapped attributes (strings only), as their request id needs it:
    orjson's key-sorted output where that is the same text (ASCII, without the DEL the
    standard encoder escapes), several times faster; the standard encoder otherwise."""
    try:
        text = orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return canonical_text(attributes)
    return text if text.isascii() and "\x7f" not in text else canonical_text(attributes)


def mparticle_user_attributes(attributes: UserAttributes) -> dict[str, str | list[str]]:
    """The `namiml_*` attributes as mParticle takes them: lists of strings within its list
    limits, flags as the strings "true"/"false" (docs/mparticle.md)."""
    mapped: dict[str, str | list[str]] = {}
    for name in ATTRIBUTE_NAMES:
        value = attributes.get(name)
        if value is True:
            mapped[name] = "true"
        elif value is False:
            mapped[name] = "false"
        elif value is not None:
            mapped[name] = trim_list(
                value, MPARTICLE_MAX_LIST_ENTRIES, MPARTICLE_MAX_LIST_ENTRY_CHARS
            )
    return mapped


def _customer_id(
    integration: MParticleIntegration, external_id: str | None, nami_user_id: str | None
) -> str | None:
    return chosen_id(
        integration.customer_id, integration.fallback_to_nami_user_id, external_id, nami_user_id
    )


def _missing_customer_id(
    integration: MParticleIntegration, external_id: str | None, nami_user_id: str | None
) -> str:
    return missing_id_reason(
        integration.customer_id,
        integration.fallback_to_nami_user_id,
        "customer_id",
        external_id,
        nami_user_id,
    )


def _environment(nami_environment: str) -> str:
    return DEVELOPMENT if nami_environment == SANDBOX else PRODUCTION


def _in_time_order(rows: Sequence[tuple[Any, ...]], positions: list[int]) -> list[int]:
    """One user's positions by time, stable (simultaneous events keep their input order): only
    a check when they come in that order already, as delivery reads them."""
    for before, after in itertools.pairwise(positions):
        if rows[after][OCCURRED_AT] < rows[before][OCCURRED_AT]:
            return sorted(positions, key=lambda p: rows[p][OCCURRED_AT])
    return positions


def _user_batches(
    key: _BatchKey,
    positions: list[int],
    events: OutgoingEvents,
    integration: MParticleIntegration,
    batches: list[MParticleBatch],
) -> None:
    """One user's batches, added to `batches`. A batch closes after a `user.*` event unless
    the next `user.*` event has the same attributes (e.g. `trial.started` and `purchased` at
    one instant): every `user.*` event still travels with the attributes as of itself, in
    fewer batches."""
    rows, payloads, carried = events.rows, events.payloads, events.attributes
    revenue = events.revenue
    renames = integration.event_renames
    mapped: list[dict[str, Any]] = []
    event_ids: list[str] = []
    pending: UserAttributes | None = None  # attributes of the last user.* event in `mapped`
    cut = 0  # `mapped[:cut]` ends at that event
    for position in positions:
        row = rows[position]
        user_event = row[EVENT_TYPE].startswith(USER_EVENT_PREFIX)
        attributes = carried[position] if user_event else None
        if attributes is not None and pending is not None and attributes != pending:
            batches.append(_batch(key, mapped[:cut], event_ids[:cut], pending, integration))
            del mapped[:cut], event_ids[:cut]
        converted = None if revenue is None else revenue[position]
        mapped.append(_event(row, payloads[position], user_event, renames, converted))
        event_ids.append(row[EVENT_ID])
        if attributes is not None:
            pending, cut = attributes, len(mapped)
    if pending is not None and cut < len(mapped):
        batches.append(_batch(key, mapped[:cut], event_ids[:cut], pending, integration))
        batches.append(_batch(key, mapped[cut:], event_ids[cut:], None, integration))
    elif mapped:
        batches.append(_batch(key, mapped, event_ids, pending, integration))


def _batch(
    key: _BatchKey,
    events: list[dict[str, Any]],
    event_ids: list[str],
    attributes: UserAttributes | None,
    integration: MParticleIntegration,
) -> MParticleBatch:
    environment, customer_id, nami_user_id = key
    source_request_id = request_id(integration.name, "events", *sorted(event_ids))
    body = _batch_head(integration, environment, customer_id, nami_user_id, source_request_id)
    if attributes is not None:
        body["user_attributes"] = mparticle_user_attributes(attributes)
    body["events"] = events
    return MParticleBatch(body, tuple(event_ids), nami_user_id)


def _batch_head(
    integration: MParticleIntegration,
    environment: str,
    customer_id: str,
    nami_user_id: str | None,
    source_request_id: str,
) -> dict[str, Any]:
    return {
        "environment": environment,
        "source_request_id": source_request_id,
        "user_identities": _with_nami_identity(
            {"customer_id": customer_id}, integration, nami_user_id
        ),
    }


def _with_nami_identity(
    identities: dict[str, str], integration: MParticleIntegration, nami_user_id: str | None
) -> dict[str, str]:
    """Adds the Nami user id under the identity the integration registered for it, if any.

    mParticle fails requests that carry an unregistered identity, and the official schema has no
    `partner_identities`, so the option names one of the schema's own identity slots (`other`,
    `other_id_2`..`other_id_4`) that the workspace mapped to `namiml_user_id`; off by default.
    """
    if integration.partner_identity is None:
        return identities
    nami_user_id = usable_id(nami_user_id)
    if nami_user_id is None:
        return identities
    return {**identities, integration.partner_identity: nami_user_id}


def _attribute_value(value: Any) -> str:
    """Event custom attributes are scalars: strings, cut to mParticle's value limit."""
    return trim(as_text(value), MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS)


def _event(
    row: tuple[Any, ...],
    payload: dict[str, Any],
    user_event: bool,
    renames: dict[str, str],
    revenue: ConvertedPrice | None,
) -> dict[str, Any]:
    """One Nami event as an mParticle event (docs/mparticle.md; renames override the name);
    a transaction's `revenue`, when the feed converts, replaces the price the store charged."""
    (
        event_id,
        event_type,
        occurred_at,
        _,
        _,
        app_platform_id,
        platform_type,
        _,
        _,
        _,
        _,
        payload_json,
    ) = row
    data: dict[str, Any] = {
        "source_message_id": message_id(event_id),
        "timestamp_unixtime_ms": (occurred_at - EPOCH) // MILLISECOND,
        "custom_attributes": event_attributes(
            event_type,
            platform_type,
            app_platform_id,
            payload,
            MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS,
            True,
            len(payload_json),
        ),
    }
    rename = renames.get(event_type) if renames else None
    if user_event:
        data["custom_event_type"] = "transaction"
        data["event_name"] = rename or USER_EVENT_NAMES[event_type]
    elif event_type == DEVICE_TRANSACTION:
        _add_purchase(data, payload, revenue)
        if rename is not None:
            data["event_name"] = rename
        return {"event_type": "commerce_event", "data": data}
    else:  # device.impression: the schema has no impression custom event type
        data["custom_event_type"] = "other"
        data["event_name"] = rename or IMPRESSION_EVENT_NAME
    return {"event_type": "custom_event", "data": data}


def _add_purchase(
    data: dict[str, Any], payload: dict[str, Any], converted: ConvertedPrice | None
) -> None:
    """The `purchase` product action: one product, the sku, at the paid price and quantity,
    or at the converted price, with the original price, currency and rate as attributes."""
    sku = payload["sku_ref_id"]
    quantity = payload.get("quantity", 1)
    if converted is None:
        price, currency = payload["price"], payload["currency"]
        total = total_amount(price, quantity)
    else:
        price, total, currency = converted.price, converted.total(quantity), converted.currency
        for name, value in converted.origin().items():
            data["custom_attributes"][name] = _attribute_value(value)
    action: dict[str, Any] = {
        "action": "purchase",
        "total_amount": total,
        "products": [{"id": sku, "name": sku, "price": price, "quantity": quantity}],
    }
    transaction_id = payload.get("transaction_id")
    if transaction_id is not None:
        action["transaction_id"] = as_text(transaction_id)
    data["product_action"] = action
    data["currency_code"] = currency
