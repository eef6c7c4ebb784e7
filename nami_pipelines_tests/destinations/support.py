"""What the destination tests share: example and generated events, integrations, the schema."""

import json
from collections.abc import Iterable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

import nami_pipelines
from nami_pipelines.config import AmplitudeIntegration, MParticleIntegration
from nami_pipelines.destinations.outcomes import OutcomeGroup
from nami_pipelines.destinations.outgoing import ROW_COLUMNS, OutgoingEvents, Row
from nami_pipelines.event_types import is_user_event
from nami_pipelines.events.model import NamiEvent
from nami_pipelines.events.validation import validate_event
from nami_pipelines.samples import generate_events
from nami_pipelines.snapshots.attributes import (
    ACTIVE_ENTITLEMENTS,
    ACTIVE_SKUS,
    DEVICE_IDS,
    DEVICE_PLATFORMS,
    FORMER_SUBSCRIBER,
    IN_GRACE_PERIOD,
    IN_INTRO_OFFER_PERIOD,
    IN_TRIAL_PERIOD,
    UserAttributes,
)
from nami_pipelines_tests.fixtures import SAMPLE_EVENTS

GOLDEN = Path(__file__).parent / "golden"
SCHEMA_FILE = (
    Path(nami_pipelines.__file__).parent
    / "emulators"
    / "schemas"
    / "mparticle.inbound.eventsapi.schema.json"
)
API_KEY = "amplitude-secret-key-0123456789"


@cache
def example_records() -> tuple[dict[str, Any], ...]:
    """The 15 records of the sample file (all 13 types, two platforms, a user without an
    external id, sandbox events)."""
    lines = SAMPLE_EVENTS.read_text().splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def event(record: dict[str, Any], **changes: Any) -> NamiEvent:
    """A validated event from an NDJSON record, with top-level fields changed."""
    return validate_event({**record, **changes})


def payload_attributes(nami_event: NamiEvent) -> UserAttributes:
    """The attributes a `user.*` event's own payload implies: close enough to docs/attributes.md for
    mapping tests, which take the attributes as given."""
    payload = nami_event.payload
    entitlements = payload.get("active_entitlements") or []
    state = payload.get("customer_journey_state") or {}
    devices = sorted(
        (device["id"], (device.get("platform") or {}).get("id") or "")
        for device in payload.get("devices") or []
    )
    return {
        ACTIVE_ENTITLEMENTS: sorted({item["entitlement_ref_id"] for item in entitlements}),
        ACTIVE_SKUS: sorted({item["sku_ref_id"] for item in entitlements if item["sku_ref_id"]}),
        DEVICE_IDS: [device_id for device_id, _ in devices],
        DEVICE_PLATFORMS: [platform for _, platform in devices],
        FORMER_SUBSCRIBER: state.get("former_subscriber", False),
        IN_GRACE_PERIOD: state.get("in_grace_period", False),
        IN_TRIAL_PERIOD: state.get("in_trial_period", False),
        IN_INTRO_OFFER_PERIOD: state.get("in_intro_offer_period", False),
    }


# An event and the attributes delivery gives it (None for device events).
Item = tuple[NamiEvent, UserAttributes | None]


def outgoing(nami_event: NamiEvent) -> Item:
    """The event as delivery hands it over: attributes on `user.*` events only."""
    if is_user_event(nami_event.event_type):
        return nami_event, payload_attributes(nami_event)
    return nami_event, None


def row_of(nami_event: NamiEvent) -> Row:
    """The event as a `nami_events` row, the way delivery reads it."""
    columns = nami_event.row()
    return tuple(0 if name == "loaded_seq" else columns[name] for name in ROW_COLUMNS)


def chunk(items: Iterable[Item]) -> OutgoingEvents:
    """Events with their attributes as the mappings take them: in columns."""
    events = OutgoingEvents()
    for nami_event, attributes in items:
        events.rows.append(row_of(nami_event))
        events.payloads.append(nami_event.payload)
        events.attributes.append(attributes)
    return events


def per_event(groups: Iterable[OutcomeGroup]) -> list[tuple[str, str, str | None]]:
    """Outcome groups as (event id, status, reason) per event, in order."""
    return [
        (event_id, status, reason) for status, reason, event_ids in groups for event_id in event_ids
    ]


def generated(users: int, days: int, seed: int) -> list[Item]:
    """Realistic events from the generator, ready to map."""
    records = generate_events(users, days, date(2026, 1, 1), seed)
    return [outgoing(validate_event(record)) for record in records]


def mparticle_integration(**options: Any) -> MParticleIntegration:
    return MParticleIntegration.model_validate(
        {
            "type": "mparticle",
            "name": "mparticle_ios",
            "app_id": "a7e1c5f0-2d3b-4c6a-9e8f-1b2c3d4e5f60",
            "platform": "apple",
            "credentials": {"key_env": "MP_KEY", "secret_env": "MP_SECRET"},
            **options,
        }
    )


def amplitude_integration(**options: Any) -> AmplitudeIntegration:
    return AmplitudeIntegration.model_validate(
        {
            "type": "amplitude",
            "name": "amplitude_production",
            "app_id": "a7e1c5f0-2d3b-4c6a-9e8f-1b2c3d4e5f60",
            "credentials": {"api_key_env": "AMPLITUDE_KEY"},
            **options,
        }
    )


@cache
def batch_validator() -> jsonschema.Draft7Validator:
    """The official batch schema with format checking on (docs/mparticle.md)."""
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def schema_errors(body: dict[str, Any]) -> list[str]:
    """Every schema error of a batch, with where it is."""
    return [
        f"{list(error.absolute_path)}: {error.message[:200]}"
        for error in batch_validator().iter_errors(body)
    ]


class CachedSchemaCheck:
    """The same check as `schema_errors`, for thousands of batches: the batch without its
    events, then each event against the schema's `events.items` (all the schema says about an
    event), remembering events already checked. The pure-Python validator takes ~3 ms per event
    (a oneOf over 17 event definitions), and the variants of one data set share most events."""

    def __init__(self) -> None:
        validator = batch_validator()
        self._items = validator.evolve(schema=validator.schema["properties"]["events"]["items"])
        self._seen: dict[str, list[str]] = {}

    def errors(self, body: dict[str, Any]) -> list[str]:
        errors = schema_errors({**body, "events": []} if "events" in body else body)
        for index, item in enumerate(body.get("events") or []):
            key = json.dumps(item, sort_keys=True)
            if key not in self._seen:
                self._seen[key] = [error.message[:200] for error in self._items.iter_errors(item)]
            errors.extend(f"['events', {index}]: {message}" for message in self._seen[key])
        return errors


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())
