"""The APIs' documented limits (docs/mparticle.md, docs/amplitude.md), in one place: the
configuration checks what an integration may ask for against them, and `destinations/` packs
and trims to them.

Byte limits use the strict decimal reading ("128 KB" = 128,000 bytes): a request that fits
here fits whichever reading the API applies.
"""

from typing import Final

# mParticle Events API (docs/mparticle.md).
MPARTICLE_MAX_BATCHES_PER_REQUEST: Final = 100
MPARTICLE_MAX_REQUEST_BYTES: Final = 256_000
MPARTICLE_MAX_BATCH_BYTES: Final = 128_000
MPARTICLE_MAX_EVENT_ATTRIBUTE_CHARS: Final = 4096
MPARTICLE_MAX_LIST_ENTRIES: Final = 1000
MPARTICLE_MAX_LIST_ENTRY_CHARS: Final = 512

# Amplitude HTTP V2 API (docs/amplitude.md).
AMPLITUDE_MAX_EVENTS_PER_REQUEST: Final = 2000
AMPLITUDE_MAX_REQUEST_BYTES: Final = 1_000_000
AMPLITUDE_MAX_PROPERTY_CHARS: Final = 1024
# Amplitude documents no array length limit; the mParticle one keeps both profiles alike.
AMPLITUDE_MAX_ARRAY_ENTRIES: Final = MPARTICLE_MAX_LIST_ENTRIES
AMPLITUDE_DEFAULT_MIN_ID_LENGTH: Final = 5
