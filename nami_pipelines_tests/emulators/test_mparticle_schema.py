"""The compiled validator agrees with the reference `jsonschema` on the official schema."""

import copy
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from nami_pipelines.emulators.mparticle_schema import BatchValidator, batch_schema, sample_batch
from nami_pipelines_tests.emulators.payloads import mparticle_batch

REFERENCE = jsonschema.Draft7Validator(
    batch_schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
)


@pytest.fixture(scope="module")
def validator() -> BatchValidator:
    return BatchValidator()


def test_official_sample_needs_format_checking(validator: BatchValidator) -> None:
    without_formats = jsonschema.Draft7Validator(batch_schema())

    assert validator.problem(sample_batch()) is None
    assert REFERENCE.is_valid(sample_batch())
    assert not without_formats.is_valid(sample_batch())


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(batch: dict[str, Any]) -> None:
        target = batch
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(batch: dict[str, Any]) -> None:
        target = batch
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], bool]] = {
    "ipv6": (_set(["ip"], "2001:db8::1"), True),
    "ipv4-out-of-range": (_set(["ip"], "256.1.1.1"), False),
    "ipv4-leading-zero": (_set(["ip"], "01.2.3.4"), False),
    "ip-garbage": (_set(["ip"], "not-an-ip"), False),
    "no-environment": (_delete(["environment"]), False),
    "unknown-environment": (_set(["environment"], "staging"), False),
    "unknown-top-level-field": (_set(["partner_identities"], {}), False),
    "unregistered-identity": (_set(["user_identities", "namiml_user_id"], "u1"), False),
    "unknown-event-type": (_set(["events", 0, "event_type"], "impression"), False),
    "unknown-custom-event-type": (
        _set(["events", 0, "data", "custom_event_type"], "impression"),
        False,
    ),
    "other-custom-event-type": (_set(["events", 0, "data", "custom_event_type"], "other"), True),
    "no-event-name": (_delete(["events", 0, "data", "event_name"]), False),
    "bad-source-message-id": (_set(["events", 0, "data", "source_message_id"], "x"), False),
    "float-timestamp": (_set(["events", 0, "data", "timestamp_unixtime_ms"], 1.5), False),
    "object-attribute": (_set(["events", 0, "data", "custom_attributes", "a"], {"b": 1}), False),
    "object-user-attribute": (_set(["user_attributes"], {"a": {"b": 1}}), False),
    "list-user-attribute": (_set(["user_attributes"], {"a": ["x", "y"]}), True),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_agrees_with_the_reference_validator(validator: BatchValidator, name: str) -> None:
    mutate, valid = MUTATIONS[name]
    batch = copy.deepcopy(mparticle_batch(user_attributes={}))
    mutate(batch)

    assert REFERENCE.is_valid(batch) is valid
    assert (validator.problem(batch) is None) is valid
