"""Identifiers of sample data: a user's own ids from their random stream, event ids from content.

A user's ids (Nami user id, external id, device ids) are drawn from the user's random stream, so
user N keeps them whatever else is generated. An event's id is a version-5 UUID of the event's
whole content (every field but the id itself). One id therefore always means one content: files
generated with the same seed at other sizes (`--users`, `--days`, `--start`) share an id only for
an event that is the same in every field, so loading them into one store adds that event once and
never meets a conflicting duplicate.
"""

import hashlib
import random
import uuid
from collections import Counter
from typing import Any, Final

import orjson

# Fixed, so that the same content gets the same id on every machine and in every version.
EVENT_ID_NAMESPACE: Final = uuid.UUID("a86bcf55-f362-4b63-b94f-a492965cc10c")
_VARIANT_DIGITS: Final = "89ab"  # RFC 4122 variant: the top two bits of the 17th digit are 10


def uuid4_string(rng: random.Random) -> str:
    """A version-4 UUID from `rng`: reproducible, and cheaper than building `uuid.UUID` objects."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class EventIds:
    """The ids of one user's events. Two events of one user that are identical in every field
    (the same paywall shown on the same device in the same second) are still two events: the
    second gets the id of the content plus its rank among the identical ones."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def id_for(self, content: dict[str, Any]) -> str:
        """The id of an event whose fields other than `event_id` are `content`."""
        name = orjson.dumps(content)
        rank = self._seen[name]
        self._seen[name] += 1
        return uuid5_string(name + b"#%d" % rank if rank else name)


def uuid5_string(name: bytes) -> str:
    """`str(uuid.uuid5(EVENT_ID_NAMESPACE, name))`, formatted by hand: a third of the cost, and
    the generator makes one per event."""
    h = hashlib.sha1(EVENT_ID_NAMESPACE.bytes + name).hexdigest()
    variant = _VARIANT_DIGITS[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"
