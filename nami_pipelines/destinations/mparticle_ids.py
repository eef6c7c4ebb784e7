"""The ids mParticle deduplicates on (docs/mparticle.md): an event's `source_message_id` and a
batch's `source_request_id`, both UUIDs the schema requires, both derived from what they name so
a retry, even after a restart, carries the same ones."""

import hashlib
import re
import uuid
from typing import Final

# Fixed for good: request and message ids derived from it must stay stable across releases.
NAMESPACE: Final = uuid.UUID("79426d10-a8cd-413a-9e94-0e28b5ac9878")
_NAMESPACE_BYTES: Final = NAMESPACE.bytes  # a property computed anew on every read
# A hex digit with its top two bits set to the RFC 4122 variant (10).
_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
# The schema's `Uuid` pattern; matched whole, as the Rust validator does (no trailing newline).
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_UUID_MATCH: Final = _UUID.fullmatch
_SEPARATOR: Final = "\x1f"


def message_id(event_id: str) -> str:
    """`source_message_id`: the event id itself, which Nami sends as a UUID; any other id is
    turned into a stable UUID (the schema requires one), so retries still deduplicate."""
    return event_id if _UUID_MATCH(event_id) else _uuid5(event_id)


def request_id(*parts: str) -> str:
    """`source_request_id`: derived from what the batch is, so a retry of the same batch,
    even after a restart, reuses it."""
    return _uuid5(_SEPARATOR.join(parts))


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))`, without building a `UUID` on the way: every batch
    needs one, and the object cost three times the hash."""
    text = hashlib.sha1(_NAMESPACE_BYTES + name.encode()).hexdigest()
    # The first 16 bytes, with the version (5) and the RFC 4122 variant written in.
    return f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:32]}"
