"""What Amplitude's answers say, read off their bodies: which events a 400 names, which ids a
429 throttles or finds past their daily quota, a refused key, an Identify acknowledgement. The
client (`amplitude_client.py`) decides what to do about each."""

from collections.abc import Sequence
from typing import Any

from nami_pipelines.destinations.answers import is_json_object
from nami_pipelines.destinations.http import parse_json
from nami_pipelines.destinations.transport import HttpResponse

INVALID_INDEX_FIELDS = (
    "events_with_invalid_fields",
    "events_with_missing_fields",
    "events_with_invalid_id_lengths",
)


def rejected_positions(body: dict) -> dict[int, list[str]]:
    """Event positions an Amplitude 400 names, with the problems found on each."""
    problems: dict[int, list[str]] = {}
    for key in INVALID_INDEX_FIELDS:
        for field, positions in (body.get(key) or {}).items():
            for position in positions:
                problems.setdefault(int(position), []).append(f"{key}: {field}")
    for position in body.get("silenced_events") or []:
        problems.setdefault(int(position), []).append("silenced_events")
    return problems


def throttled_by_id(body: dict, ids: Sequence[str | None]) -> dict[str | None, list[int]]:
    """The positions a 429 lists as throttled, grouped by the user or device at each."""
    listed = {int(p) for p in body.get("throttled_events") or [] if int(p) < len(ids)}
    by_id: dict[str | None, list[int]] = {}
    for position in sorted(listed):
        by_id.setdefault(ids[position], []).append(position)
    return by_id


def project_wide(body: dict, throttled_by_id: dict[str | None, list[int]]) -> bool:
    """A 429 for the project as a whole rather than for busy users or devices: it names none,
    and the events it throttles are not all one id's."""
    named = body.get("throttled_users") or body.get("throttled_devices")
    return not named and len(throttled_by_id) > 1


def over_daily_quota(body: dict, events: Sequence[dict[str, Any]]) -> list[int]:
    """The positions of events whose user or device a 429 says is past its daily quota."""
    users = body.get("exceeded_daily_quota_users") or {}
    devices = body.get("exceeded_daily_quota_devices") or {}
    if not users and not devices:
        return []
    return [
        position
        for position, event in enumerate(events)
        if event.get("user_id") in users or event.get("device_id") in devices
    ]


def is_key_refused(response: HttpResponse) -> bool:
    """Amplitude's 400 "Invalid API key" (also its answer to a missing key)."""
    body = parse_json(response.body)
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    return response.status == 400 and "invalid api key" in error.lower()


def is_identify_answer(response: HttpResponse) -> bool:
    return response.body.strip().lower() == "success" or is_json_object(response)
