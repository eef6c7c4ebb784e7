"""Integrations configuration (docs/configuration.md): a YAML file into typed, validated models.

A configuration holds environment variable *names* for credentials, never the secrets; secrets are
read from the environment only when a request is signed. Any problem fails at load with a message
that names the integration and the field, so a typo never turns into a silent non-delivery.
"""

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nami_pipelines.event_types import SENDABLE_EVENT_TYPES
from nami_pipelines.settings import INTEGRATIONS_FILE_VARIABLE, PROJECT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_INTEGRATIONS_FILE = PROJECT_ROOT / "integrations.yaml"
SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

MPARTICLE_PODS: dict[str, str] = {
    "US1": "https://s2s.mparticle.com",
    "US2": "https://s2s.us2.mparticle.com",
    "EU1": "https://s2s.eu1.mparticle.com",
    "AU1": "https://s2s.au1.mparticle.com",
}
AMPLITUDE_ENDPOINTS: dict[str, str] = {
    "standard": "https://api2.amplitude.com",
    "eu": "https://api.eu.amplitude.com",
}
PLATFORMS = ("apple", "google", "amazon", "roku", "web")
ALL_PLATFORMS = "all"

IdChoice = Literal["external_id", "nami_user_id"]


class IntegrationConfigError(ValueError):
    """A configuration problem, worded for the person who edits the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeliveryTuning(_Strict):
    """How hard one integration may push its API."""

    max_in_flight: int = Field(default=4, ge=1, le=64)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_attempts: int = Field(default=8, ge=1, le=50)
    # Processes sending one day at once, each a span of users: delivery is CPU-bound in Python,
    # so a partition goes faster on more cores. A project's stated rate is shared among them.
    workers: int = Field(default=1, ge=1, le=32)


class _IntegrationBase(_Strict):
    name: str
    enabled: bool = True
    app_id: str = Field(min_length=1)
    events: Literal["all"] | tuple[str, ...] = "all"
    event_renames: dict[str, str] = Field(default_factory=dict)
    sandbox: Literal["send", "drop"] = "send"
    fallback_to_nami_user_id: bool = False
    delivery: DeliveryTuning = Field(default_factory=DeliveryTuning)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(
                "must be a slug: lowercase letters, digits and _, starting with a letter"
            )
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: Any) -> Any:
        if value == "all":
            return value
        unknown = sorted(set(value) - set(SENDABLE_EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
        if not value:
            raise ValueError("select at least one event type, or 'all'")
        return tuple(dict.fromkeys(value))

    @field_validator("event_renames")
    @classmethod
    def _known_renames(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SENDABLE_EVENT_TYPES))
        if unknown:
            raise ValueError(f"renames unknown event type(s): {', '.join(unknown)}")
        empty = [key for key, name in value.items() if not name.strip()]
        if empty:
            raise ValueError(f"empty new name for {', '.join(empty)}")
        return value

    @property
    def selected_events(self) -> tuple[str, ...]:
        return SENDABLE_EVENT_TYPES if self.events == "all" else self.events


class MParticleCredentials(_Strict):
    key_env: str = Field(min_length=1)
    secret_env: str = Field(min_length=1)


class MParticleIntegration(_IntegrationBase):
    """One mParticle "Act As" input feed: one platform, its own S2S key and secret."""

    type: Literal["mparticle"]
    platform: str
    pod: Literal["US1", "US2", "EU1", "AU1"] = "US1"
    base_url: str | None = None
    credentials: MParticleCredentials
    customer_id: IdChoice = "external_id"
    # The schema's identity slot the workspace registered for the Nami user id (docs/mparticle.md).
    partner_identity: Literal["other", "other_id_2", "other_id_3", "other_id_4"] | None = None
    historical_after_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        if value not in (*PLATFORMS, ALL_PLATFORMS):
            raise ValueError(f"must be one of {', '.join((*PLATFORMS, ALL_PLATFORMS))}")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @property
    def api_base(self) -> str:
        return (self.base_url or MPARTICLE_PODS[self.pod]).rstrip("/")

    def secret_variables(self) -> tuple[str, ...]:
        return (self.credentials.key_env, self.credentials.secret_env)

    def basic_auth(self) -> tuple[str, str]:
        """Key and secret from the environment, read at the moment a request is signed."""
        return (
            os.environ[self.credentials.key_env],
            os.environ[self.credentials.secret_env],
        )


class AmplitudeCredentials(_Strict):
    api_key_env: str = Field(min_length=1)


class AmplitudeIntegration(_IntegrationBase):
    """One Amplitude project (e.g. staging, production, an EU project)."""

    type: Literal["amplitude"]
    endpoint: str = "standard"
    credentials: AmplitudeCredentials
    user_id: IdChoice = "external_id"
    min_id_length: int | None = Field(default=None, ge=1, le=5)
    use_batch_api_for_backfills: bool = False

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value in AMPLITUDE_ENDPOINTS:
            return value
        return _http_url(value)

    @property
    def api_base(self) -> str:
        return AMPLITUDE_ENDPOINTS.get(self.endpoint, self.endpoint).rstrip("/")

    def secret_variables(self) -> tuple[str, ...]:
        return (self.credentials.api_key_env,)

    def api_key(self) -> str:
        return os.environ[self.credentials.api_key_env]


AnyIntegration = MParticleIntegration | AmplitudeIntegration
Integration = Annotated[AnyIntegration, Field(discriminator="type")]


class IntegrationsFile(_Strict):
    integrations: tuple[Integration, ...] = ()


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value


def _describe(error: ValidationError, raw: list[Any]) -> str:
    first = error.errors()[0]
    location = list(first["loc"])
    name = "?"
    if len(location) >= 2 and location[0] == "integrations" and isinstance(location[1], int):
        entry = raw[location[1]] if location[1] < len(raw) else {}
        name = entry.get("name", f"#{location[1] + 1}") if isinstance(entry, dict) else name
        location = location[2:]
        if location and location[0] in ("mparticle", "amplitude"):
            location = location[1:]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        location = ["type"]
    field = ".".join(str(part) for part in location) or "(entry)"
    return f"integration '{name}': field '{field}': {first['msg']}"


def parse_integrations(
    document: Mapping[str, Any] | None, *, check_env: bool = True
) -> tuple[AnyIntegration, ...]:
    """Validate a decoded YAML document; with `check_env`, every credentials variable must be set."""
    document = document or {}
    if not isinstance(document, Mapping):
        raise IntegrationConfigError("the integrations file must be a mapping with 'integrations'")
    raw = document.get("integrations") or []
    if not isinstance(raw, list):
        raise IntegrationConfigError("'integrations' must be a list")
    try:
        parsed = IntegrationsFile.model_validate({"integrations": raw})
    except ValidationError as error:
        raise IntegrationConfigError(_describe(error, raw)) from None
    seen: set[str] = set()
    for integration in parsed.integrations:
        if integration.name in seen:
            raise IntegrationConfigError(
                f"integration '{integration.name}': field 'name': another integration has this name"
            )
        seen.add(integration.name)
        if integration.type == "mparticle" and integration.platform == ALL_PLATFORMS:
            logger.warning(
                "integration '%s': platform 'all' is the legacy all-platforms feed; "
                "prefer one feed per platform",
                integration.name,
            )
        if check_env and integration.enabled:
            for variable in integration.secret_variables():
                if not os.environ.get(variable):
                    raise IntegrationConfigError(
                        f"integration '{integration.name}': field 'credentials': "
                        f"environment variable {variable} is not set"
                    )
    return parsed.integrations


def integrations_file_path() -> Path:
    configured = os.environ.get(INTEGRATIONS_FILE_VARIABLE)
    return Path(configured) if configured else DEFAULT_INTEGRATIONS_FILE


def load_integrations(
    path: Path | None = None, *, check_env: bool = True
) -> tuple[AnyIntegration, ...]:
    """The integrations of the YAML file (`NAMI_INTEGRATIONS_FILE`, else `integrations.yaml`).

    No file at the default place means no integrations yet; a file named explicitly must exist.
    """
    explicit = path is not None or bool(os.environ.get(INTEGRATIONS_FILE_VARIABLE))
    path = path or integrations_file_path()
    if not path.exists():
        if explicit:
            raise IntegrationConfigError(f"integrations file not found: {path}")
        return ()
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise IntegrationConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_integrations(document, check_env=check_env)
