"""The one definition of the eight `namiml_*` attributes (docs/attributes.md) and of a user's
values."""

from typing import Any, Final

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


def attribute_flags(
    journey: tuple[Any, Any, Any, Any], has_active: Any, once_paid: Any
) -> dict[str, Any]:
    """The four flag attributes (docs/attributes.md) from the latest `user.*` event's journey
    flags (former_subscriber, in_grace_period, in_trial_period, in_intro_offer_period), whether
    any of its entitlements is active, and whether the user ever paid.

    The one statement of these rules: written with `&`, `|` and `^ True` (not `and`, `or`,
    `not`), so the same lines serve a single user (Python booleans) and a whole snapshot (numpy
    arrays of booleans).
    """
    former, grace, trial, intro = journey
    return {
        FORMER_SUBSCRIBER: former | (once_paid & (has_active ^ True)),
        IN_GRACE_PERIOD: grace & has_active,
        IN_TRIAL_PERIOD: trial & has_active,
        IN_INTRO_OFFER_PERIOD: intro & has_active,
    }


def pays_now(has_active: Any, in_trial_period: Any) -> Any:
    """Whether an event shows the user paying: an entitlement active at that moment, outside a
    free trial (what makes a user a former subscriber once nothing is active)."""
    return has_active & (in_trial_period ^ True)
