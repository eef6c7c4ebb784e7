"""One selection rule: which stored events an integration sends, and per event whether it drops
it (`sandbox: drop`) and which id it sends it under.

Four readers need the first part (the send loop, the progress count, the sensor, status and
lag); they all take it from `event_filter` here, as a plain `EventFilter` the store applies
without knowing any destination. Both mappings take the per-event decisions from here, so a
rule changed here changes for both APIs and every reader at once.
"""

from collections.abc import Callable
from typing import Final

from nami_pipelines.config import ALL_PLATFORMS, AnyIntegration, IdChoice, MParticleIntegration
from nami_pipelines.destinations.outgoing import SANDBOX
from nami_pipelines.events.filter import EventFilter


def bound_platform(integration: AnyIntegration) -> str | None:
    """The platform a feed acts as; None when every platform's events go to it (an Amplitude
    project, or a feed with `platform: all`)."""
    if isinstance(integration, MParticleIntegration) and integration.platform != ALL_PLATFORMS:
        return integration.platform
    return None


def event_filter(integration: AnyIntegration) -> EventFilter:
    """The events the integration sends: its app's, of its `events:` types, and for a feed
    bound to a platform only that platform's."""
    return EventFilter(
        app_id=integration.app_id,
        event_types=tuple(integration.selected_events),
        platform_type=bound_platform(integration),
    )


def contact_filter(integration: AnyIntegration) -> EventFilter:
    """The events that say where the integration's users are (environment, device) for an
    attribute update sent with no event: the app's and bound platform's, of every type."""
    return EventFilter(app_id=integration.app_id, platform_type=bound_platform(integration))


def sandbox_dropped(event_environment: str, sandbox_option: str) -> bool:
    """True when the integration drops this environment's events (`sandbox: drop`)."""
    return sandbox_option == "drop" and event_environment == SANDBOX


SANDBOX_DROPPED_REASON: Final = "sandbox environment and the integration is set to sandbox: drop"

# Ids that stand for "no id" (an SDK's default, a null printed as text, the all-zero IDFA of
# Limit Ad Tracking). Amplitude rejects them, case-insensitively; sent to mParticle they would
# merge every such user into one profile. Such an id counts as missing, for both APIs.
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


def is_placeholder(value: str) -> bool:
    """True for an id that stands for no id (surrounding spaces and case do not matter)."""
    return value.strip().lower() in PLACEHOLDER_IDS


def usable_id(value: str | None) -> str | None:
    """The id, or None when there is none or it is a placeholder."""
    return None if value is None or is_placeholder(value) else value


def chosen_id(
    choice: IdChoice, fallback: bool, external_id: str | None, nami_user_id: str | None
) -> str | None:
    """The Customer ID (mParticle) or User ID (Amplitude) the integration chose, falling back
    to the Nami User ID only when the integration opted in; placeholders count as missing."""
    external_id, nami_user_id = usable_id(external_id), usable_id(nami_user_id)
    if choice == "nami_user_id" or (external_id is None and fallback):
        return nami_user_id
    return external_id


def id_chooser(choice: IdChoice, fallback: bool) -> Callable[[str | None, str | None], str | None]:
    """`chosen_id` for one integration, remembering its last answer: a user's events come
    together with the same ids, so the placeholder checks run once per user, not per event."""
    # (None, None) chooses None whatever the integration, so that is the first answer known.
    last_external: str | None = None
    last_nami: str | None = None
    last_chosen: str | None = None

    def choose(external_id: str | None, nami_user_id: str | None) -> str | None:
        nonlocal last_external, last_nami, last_chosen
        if external_id != last_external or nami_user_id != last_nami:
            last_external, last_nami = external_id, nami_user_id
            last_chosen = chosen_id(choice, fallback, external_id, nami_user_id)
        return last_chosen

    return choose


def absent_id(name: str, value: str | None) -> str:
    """Why an id is not there: none at all, or a placeholder (named, so it can be traced)."""
    return f"no {name}" if value is None else f"{name} {value!r} is a placeholder"


def missing_id_reason(
    choice: IdChoice,
    fallback: bool,
    field: str,
    external_id: str | None,
    nami_user_id: str | None,
) -> str:
    """Why `chosen_id` found nothing, worded for the person who configures the integration."""
    if choice == "nami_user_id":
        return f"{absent_id('nami_user_id', nami_user_id)} for {field}"
    external = absent_id("external_id", external_id)
    if fallback:
        return f"{external} and {absent_id('nami_user_id', nami_user_id)} for {field}"
    return f"{external} for {field} and fallback_to_nami_user_id is off"
