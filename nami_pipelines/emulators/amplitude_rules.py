"""Amplitude's per-event rules (docs/amplitude.md): required fields, field types, id lengths,
and how `user_properties` (plain or `$set`/`$setOnce`/`$unset`) change a user's properties."""

from dataclasses import dataclass, field
from typing import Any, Final

# The strict (decimal) reading of "1 MB" and "20 MB": a sender that passes here passes there.
MAX_HTTPAPI_BYTES: Final = 1_000_000
MAX_BATCH_BYTES: Final = 20_000_000
MAX_HTTPAPI_EVENTS: Final = 2000
HTTPAPI_EPS_PER_ID: Final = 30
BATCH_EPS_PER_ID: Final = 1000
DEFAULT_MIN_ID_LENGTH: Final = 5
ID_FIELDS: Final = ("user_id", "device_id")
PROPERTY_OPERATIONS: Final = ("$set", "$setOnce", "$unset")
# Ids Amplitude refuses as placeholders for "no id", compared case-insensitively: an event that
# carries one is listed in `events_with_invalid_fields` under the field. The emulator's own copy
# of the rule, so a sender that shares a wrong list with it still gets caught.
PLACEHOLDER_IDS: Final = frozenset(
    {
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "",
        "00000000-0000-0000-0000-000000000000",
        "{}",
        "lmy47d",
        "0",
        "-1",
    }
)


# The JSON types Amplitude accepts per known field (exact types: a boolean is not a number).
_STRING: Final = frozenset({str})
_INTEGER: Final = frozenset({int})
_NUMBER: Final = frozenset({int, float})
_OBJECT: Final = frozenset({dict})
_STRING_FIELDS: Final = [
    "user_id",
    "device_id",
    "event_type",
    "app_version",
    "platform",
    "os_name",
    "os_version",
    "device_brand",
    "device_manufacturer",
    "device_model",
    "carrier",
    "country",
    "region",
    "city",
    "dma",
    "language",
    "insert_id",
    "productId",
    "revenueType",
    "currency",
    "ip",
    "idfa",
    "idfv",
    "adid",
    "android_id",
    "library",
    "partner_id",
    "version_name",
]
_FIELD_TYPES: Final[dict[str, frozenset[type]]] = {
    **dict.fromkeys(_STRING_FIELDS, _STRING),
    **dict.fromkeys(("time", "event_id", "session_id", "quantity"), _INTEGER),
    **dict.fromkeys(("price", "revenue", "location_lat", "location_lng"), _NUMBER),
    **dict.fromkeys(
        ("event_properties", "user_properties", "groups", "group_properties", "plan"), _OBJECT
    ),
}


@dataclass
class EventProblems:
    """Amplitude's three 400 lists: field name -> indexes of the events concerned."""

    missing_fields: dict[str, list[int]] = field(default_factory=dict)
    invalid_fields: dict[str, list[int]] = field(default_factory=dict)
    invalid_id_lengths: dict[str, list[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing_fields or self.invalid_fields or self.invalid_id_lengths)

    def indexes(self) -> set[int]:
        return {
            index
            for problems in (self.missing_fields, self.invalid_fields, self.invalid_id_lengths)
            for indexes in problems.values()
            for index in indexes
        }


def uses_unsupported_operation(properties: dict[str, Any]) -> bool:
    """True when `user_properties` uses an operation this emulator does not apply, or an
    operation whose operand is not an object: refused loudly rather than applied wrongly."""
    return any(
        name.startswith("$") and (name not in PROPERTY_OPERATIONS or type(operand) is not dict)
        for name, operand in properties.items()
    )


def check_events(events: list[Any], min_id_length: int) -> EventProblems:
    """Every problem of every event, as Amplitude lists them in one 400."""
    problems = EventProblems()
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            problems.invalid_fields.setdefault("event", []).append(index)
            continue
        if event.get("event_type") is None:
            problems.missing_fields.setdefault("event_type", []).append(index)
        if event.get("user_id") is None and event.get("device_id") is None:
            problems.missing_fields.setdefault("user_id_or_device_id", []).append(index)
        for name, value in event.items():
            allowed = _FIELD_TYPES.get(name)
            if allowed is not None and value is not None and type(value) not in allowed:
                problems.invalid_fields.setdefault(name, []).append(index)
        properties = event.get("user_properties")
        if type(properties) is dict and uses_unsupported_operation(properties):
            problems.invalid_fields.setdefault("user_properties", []).append(index)
        for name in ID_FIELDS:
            value = event.get(name)
            if isinstance(value, str) and value.lower() in PLACEHOLDER_IDS:
                problems.invalid_fields.setdefault(name, []).append(index)
            elif isinstance(value, str) and len(value) < min_id_length:
                problems.invalid_id_lengths.setdefault(name, []).append(index)
    return problems


def identification_problem(identification: Any) -> str | None:
    """Why Amplitude's Identify API would refuse one identification, None if it would not."""
    if not isinstance(identification, dict):
        return "an identification must be a JSON object"
    ids = [identification.get(name) for name in ID_FIELDS]
    if all(value is None for value in ids):
        return "an identification needs a user_id or a device_id"
    if any(value is not None and not isinstance(value, str) for value in ids):
        return "user_id and device_id must be strings"
    if any(isinstance(value, str) and value.lower() in PLACEHOLDER_IDS for value in ids):
        return "user_id or device_id is a placeholder, not an id"
    if any(isinstance(value, str) and len(value) < DEFAULT_MIN_ID_LENGTH for value in ids):
        return f"user_id and device_id need at least {DEFAULT_MIN_ID_LENGTH} characters"
    properties = identification.get("user_properties")
    if properties is not None and type(properties) is not dict:
        return "user_properties must be an object"
    if properties and uses_unsupported_operation(properties):
        return f"user_properties operations must be one of {', '.join(PROPERTY_OPERATIONS)}"
    return None


def apply_user_properties(profile: dict[str, Any], properties: dict[str, Any]) -> None:
    """Plain keys are set; `$set`, `$setOnce` and `$unset` do what Amplitude's do."""
    for name, value in properties.items():
        if name == "$set":
            profile.update(value)
        elif name == "$setOnce":
            for key, operand in value.items():
                profile.setdefault(key, operand)
        elif name == "$unset":
            for key in value:
                profile.pop(key, None)
        else:
            profile[name] = value


def event_user(event: dict[str, Any]) -> str:
    """Whose profile an event or identification updates: the user id, else the device id."""
    user_id = event.get("user_id")
    return user_id if user_id is not None else event["device_id"]
