"""The one definition of the eight `namiml_*` attributes (docs/attributes.md) and of a user's
values."""

from typing import Final

ACTIVE_ENTITLEMENTS: Final = "namiml_active_entitlements"
ACTIVE_SKUS: Final = "namiml_active_skus"
DEVICE_IDS: Final = "namiml_device_ids"
DEVICE_PLATFORMS: Final = "namiml_device_platforms"
FORMER_SUBSCRIBER: Final = "namiml_former_subscriber"
IN_GRACE_PERIOD: Final = "namiml_in_grace_period"
IN_TRIAL_PERIOD: Final = "namiml_in_trial_period"
IN_INTRO_OFFER_PERIOD: Final = "namiml_in_intro_offer_period"

LIST_ATTRIBUTES: Final[tuple[str, ...]] = (
    ACTIVE_ENTITLEMENTS,
    ACTIVE_SKUS,
    DEVICE_IDS,
    DEVICE_PLATFORMS,
)
FLAG_ATTRIBUTES: Final[tuple[str, ...]] = (
    FORMER_SUBSCRIBER,
    IN_GRACE_PERIOD,
    IN_TRIAL_PERIOD,
    IN_INTRO_OFFER_PERIOD,
)
ATTRIBUTE_NAMES: Final[tuple[str, ...]] = LIST_ATTRIBUTES + FLAG_ATTRIBUTES

# A user's attribute values: lists of strings for the four lists, booleans for the four flags.
UserAttributes = dict[str, list[str] | bool]

SNAPSHOT_COLUMNS: Final[tuple[str, ...]] = ("nami_user_id", "external_id", *ATTRIBUTE_NAMES)
