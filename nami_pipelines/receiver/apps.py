"""Which Nami apps the receiver takes webhooks for, and how each one's signature is checked.

The integrations file may hold a top-level `webhooks:` list of `app_id`, `secret_env` and
`signature` (`hmac-sha256`, the default, or `none`). Every app that an integration names and
that has no entry of its own is verified with `hmac-sha256` and the secret in
`NAMI_WEBHOOK_SECRET`. A known app without its secret stops the receiver at start.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from nami_pipelines.receiver.signatures import HMAC_SHA256, SIGNATURE_SCHEMES, SignatureScheme

SHARED_SECRET_VARIABLE: Final = "NAMI_WEBHOOK_SECRET"
_ENTRY_FIELDS: Final = frozenset({"app_id", "secret_env", "signature"})


class WebhookConfigError(ValueError):
    """Configuration the receiver cannot start with; one line naming the app and the field."""


@dataclass(frozen=True, slots=True)
class WebhookApp:
    """One app's webhook settings, its secret resolved (never shown: repr leaves it out)."""

    app_id: str
    scheme: SignatureScheme
    secret_variable: str | None
    secret: bytes = b""

    def __repr__(self) -> str:
        return f"WebhookApp({self.app_id!r}, {self.scheme.name}, {self.secret_variable})"

    def refusal(self, raw_body: bytes, header: str | None) -> str | None:
        """Why this body is refused (signature missing or wrong), or None when it is accepted."""
        return self.scheme.verify(raw_body, header, self.secret)


def _entry(raw: Any, index: int) -> tuple[str, str, str | None]:
    where = f"webhooks[{index}]"
    if not isinstance(raw, Mapping):
        raise WebhookConfigError(f"{where}: each entry must be a mapping with app_id")
    app_id = raw.get("app_id")
    if not isinstance(app_id, str) or not app_id.strip():
        raise WebhookConfigError(f"{where}: field 'app_id': a non-empty string is required")
    where = f"webhook app '{app_id}'"
    unknown = sorted(set(raw) - _ENTRY_FIELDS)
    if unknown:
        raise WebhookConfigError(f"{where}: field '{unknown[0]}': not a webhook setting")
    signature = raw.get("signature", HMAC_SHA256)
    if signature not in SIGNATURE_SCHEMES:
        choices = " | ".join(SIGNATURE_SCHEMES)
        raise WebhookConfigError(f"{where}: field 'signature': {signature!r} is not {choices}")
    secret_env = raw.get("secret_env")
    if secret_env is not None and (not isinstance(secret_env, str) or not secret_env.strip()):
        raise WebhookConfigError(f"{where}: field 'secret_env': the name of a variable")
    return app_id, signature, secret_env


def _resolved(app_id: str, signature: str, variable: str | None) -> WebhookApp:
    scheme = SIGNATURE_SCHEMES[signature]
    if not scheme.needs_secret:
        return WebhookApp(app_id, scheme, None)
    variable = variable or SHARED_SECRET_VARIABLE
    secret = os.environ.get(variable, "")
    if not secret:
        raise WebhookConfigError(
            f"webhook app '{app_id}': field 'secret_env': environment variable {variable} is not "
            f"set (or choose signature: none)"
        )
    return WebhookApp(app_id, scheme, variable, secret.encode())


def webhook_apps(document: Mapping[str, Any] | None) -> dict[str, WebhookApp]:
    """The apps of a decoded integrations file: its `webhooks:` entries, plus every app its
    integrations name (with the shared secret). Raises on the first problem."""
    document = document or {}
    raw_entries = document.get("webhooks") or []
    if not isinstance(raw_entries, list):
        raise WebhookConfigError("'webhooks' must be a list of apps")
    settings: dict[str, tuple[str, str | None]] = {}
    for index, raw in enumerate(raw_entries):
        app_id, signature, secret_env = _entry(raw, index)
        if app_id in settings:
            raise WebhookConfigError(f"webhook app '{app_id}': field 'app_id': listed twice")
        settings[app_id] = (signature, secret_env)
    integrations = document.get("integrations") or []
    for integration in integrations if isinstance(integrations, list) else ():
        app_id = integration.get("app_id") if isinstance(integration, Mapping) else None
        if isinstance(app_id, str) and app_id.strip():
            settings.setdefault(app_id, (HMAC_SHA256, None))
    if not settings:
        raise WebhookConfigError(
            "no Nami app to take webhooks for: add a 'webhooks:' list or integrations"
        )
    return {app_id: _resolved(app_id, *setting) for app_id, setting in settings.items()}


def load_webhook_apps(path: Path) -> dict[str, WebhookApp]:
    """The apps of the integrations file at `path` (which must exist)."""
    if not path.is_file():
        raise WebhookConfigError(f"integrations file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise WebhookConfigError(f"{path}: not valid YAML: {error}") from None
    if document is not None and not isinstance(document, Mapping):
        raise WebhookConfigError(f"{path}: must be a mapping with 'integrations' or 'webhooks'")
    return webhook_apps(document)
