"""Trimming and encoding to the APIs' size limits (docs/mparticle.md, docs/amplitude.md), which
both mappings apply to stay inside them.

Values are trimmed rather than refused: one over-long paywall name must not cost the event, and
the receiving APIs truncate anyway; trimming here makes what is sent, and recorded, exact.
The limits themselves are in `nami_pipelines/api_limits.py`.
"""

import json
from collections.abc import Iterable
from typing import Any, Final

import orjson

# Bodies are encoded with orjson: compact UTF-8, several times faster than the standard library
# on the send path. What it refuses (a lone surrogate, an integer beyond 64 bits) falls back to
# the standard encoder in ASCII, which encodes any text. NaN never reaches here: events are
# validated on load.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False)
_CANONICAL: Final = json.JSONEncoder(
    separators=(",", ":"), allow_nan=False, check_circular=False, sort_keys=True
)


def encode(value: Any) -> bytes:
    """Compact JSON bytes, the form in which everything is measured and sent."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _ENCODER.encode(value).encode("ascii")


def canonical_text(value: Any) -> str:
    """Key-sorted compact JSON: the same value always gives the same text (ids, stringified
    objects)."""
    return _CANONICAL.encode(value)


def trim(text: str, limit: int) -> str:
    """`text` cut to `limit` characters."""
    return text if len(text) <= limit else text[:limit]


def as_text(value: Any) -> str:
    """A scalar as the text mParticle receives: booleans as `true`/`false` (as the flags are),
    numbers in their shortest exact form, anything structured as canonical JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return canonical_text(value)


def trim_list(values: Iterable[Any], max_entries: int, max_chars: int) -> list[str]:
    """A list attribute as strings: at most `max_entries`, each at most `max_chars`. The lists
    are sorted (docs/attributes.md), so the kept entries are always the same ones."""
    if type(values) is list and len(values) <= max_entries:
        # The usual case, checked without a generator (this runs for every list of every event):
        # nothing to convert or cut.
        for value in values:
            if type(value) is not str or len(value) > max_chars:
                break
        else:
            return values.copy()
    kept: list[str] = []
    for value in values:
        if len(kept) == max_entries:
            break
        kept.append(trim(as_text(value), max_chars))
    return kept
