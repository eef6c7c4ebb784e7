"""The official mParticle Events API batch schema (draft-07), checked with format checking on.

Format checking matters: the top-level `ip` is oneOf IPv4/IPv6 and only the `ipv4`/`ipv6`
formats tell them apart, so without it the official sample batch fails. Validation runs on
jsonschema-rs (compiled, ~1000x the pure-Python `jsonschema` here), because the emulator must
never be what limits a sender doing tens of thousands of events per second; the test suite
cross-checks it against the reference `jsonschema` on valid and invalid batches.
"""

import json
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema_rs

SCHEMA_FILE: Final = "mparticle.inbound.eventsapi.schema.json"
SAMPLE_FILE: Final = "mparticle.inbound.eventsapi.sample.json"
MESSAGE_LIMIT: Final = 300


def _load(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath("schemas", name).read_text())


@cache
def batch_schema() -> dict[str, Any]:
    return _load(SCHEMA_FILE)


def sample_batch() -> dict[str, Any]:
    """A fresh copy of mParticle's official sample batch, which must validate."""
    return _load(SAMPLE_FILE)


def _where(path: list[str | int]) -> str:
    """`batch.events[0].data.event_name`: where in the batch an error is."""
    return "batch" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


class BatchValidator:
    """Validates one batch; explains a failing event by its own event type's definition.

    The schema's `events.items` is a oneOf over 17 event definitions, whose own error only
    says "not valid under any of the schemas"; re-checking the event against the definition
    its `event_type` names gives the field that is wrong.
    """

    def __init__(self) -> None:
        schema = batch_schema()
        self._batch = jsonschema_rs.Draft7Validator(schema, validate_formats=True)
        self._by_event_type: dict[str, jsonschema_rs.Draft7Validator] = {}
        for option in schema["properties"]["events"]["items"]["oneOf"]:
            name = option["$ref"].rsplit("/", 1)[1]
            definition = schema["definitions"][name]
            event_schema = {
                "$ref": option["$ref"],
                "definitions": schema["definitions"],
            }
            for event_type in definition["properties"]["event_type"]["enum"]:
                self._by_event_type[event_type] = jsonschema_rs.Draft7Validator(
                    event_schema, validate_formats=True
                )

    def problem(self, batch: Any) -> str | None:
        """None when the batch is valid, else one readable error with where it is."""
        if self._batch.is_valid(batch):
            return None
        error = next(self._batch.iter_errors(batch))
        path = list(error.instance_path)
        if len(path) == 2 and path[0] == "events":
            explained = self._event_error(batch["events"][path[1]])
            if explained is not None:
                inner_path, message = explained
                return f"{_where(path + inner_path)}: {message}"
        return f"{_where(path)}: {error.message[:MESSAGE_LIMIT]}"

    def _event_error(self, event: Any) -> tuple[list[str | int], str] | None:
        event_type = event.get("event_type") if isinstance(event, dict) else None
        validator = self._by_event_type.get(event_type) if isinstance(event_type, str) else None
        if validator is None:
            return ["event_type"], f"{event_type!r} is not an mParticle event type"
        error = next(validator.iter_errors(event), None)
        if error is None:
            return None
        return list(error.instance_path), error.message[:MESSAGE_LIMIT]
