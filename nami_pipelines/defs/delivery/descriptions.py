"""What the UI says about one integration's delivery asset, written from its configuration, so
the catalog tells destinations apart without opening the integrations file."""

from nami_pipelines.config import AnyIntegration, MParticleIntegration
from nami_pipelines.event_types import SENDABLE_EVENT_TYPES


def _events(integration: AnyIntegration) -> str:
    if integration.events == "all":
        return f"all {len(SENDABLE_EVENT_TYPES)} sendable event types"
    return ", ".join(f"`{event}`" for event in integration.events)


def _destination(integration: AnyIntegration) -> str:
    if isinstance(integration, MParticleIntegration):
        where = (
            f"pod {integration.pod} ({integration.api_base})"
            if integration.pod
            else integration.api_base
        )
        platform = (
            "every platform (legacy all-platforms feed)"
            if integration.platform == "all"
            else f"platform `{integration.platform}`"
        )
        return (
            f"the mParticle input feed at {where}, {platform}, "
            f"customer id `{integration.customer_id}`"
        )
    return (
        f"the Amplitude project at endpoint `{integration.endpoint}` ({integration.api_base}), "
        f"user id `{integration.user_id}`"
    )


def delivery_description(integration: AnyIntegration) -> str:
    """Markdown for the asset page: app, destination, events and the options that change what
    is sent."""
    lines = [
        f"Sends the day's events of app `{integration.app_id}` to {_destination(integration)}, "
        f"then the touched users' current `namiml_*` attributes.",
        "",
        f"- events: {_events(integration)}",
        f"- sandbox events: {'sent' if integration.sandbox == 'send' else 'dropped'}",
    ]
    if integration.fallback_to_nami_user_id:
        lines.append("- a user without that id is sent with the Nami user id")
    if integration.event_renames:
        renames = ", ".join(f"`{old}` as `{new}`" for old, new in integration.event_renames.items())
        lines.append(f"- renamed: {renames}")
    if not integration.enabled:
        lines.insert(0, "**Disabled** in the integrations file: a run sends nothing.\n")
    lines += [
        "",
        "Re-materializing a day is safe: the ledger skips what was accepted (docs/delivery.md).",
    ]
    return "\n".join(lines)
