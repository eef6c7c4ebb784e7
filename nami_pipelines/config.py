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
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from nami_pipelines.api_limits import AMPLITUDE_MAX_EVENTS_PER_REQUEST
from nami_pipelines.event_types import SENDABLE_EVENT_TYPES
from nami_pipelines.revenue_settings import BASE_DIR_CONTEXT, MParticleRevenue, RevenueSettings
from nami_pipelines.settings import INTEGRATIONS_FILE_VARIABLE, PROJECT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_INTEGRATIONS_FILE = PROJECT_ROOT / "integrations.yaml"
SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# The hosts; the documented base URLs add `/v2`, and the paths hang off that.
MPARTICLE_PODS: dict[str, str] = {
    "US1": "https://s2s.mparticle.com",
    "US2": "https://s2s.us2.mparticle.com",
    "EU1": "https://s2s.eu1.mparticle.com",
    "AU1": "https://s2s.au1.mparticle.com",
}
DEFAULT_MPARTICLE_POD = "US1"
# What users paste after the host, longest first: the documented base (`/v2`) or an endpoint.
MPARTICLE_PATHS = ("/v2/bulkevents/historical", "/v2/bulkevents", "/v2/events", "/v2")
AMPLITUDE_ENDPOINTS: dict[str, str] = {
    "standard": "https://api2.amplitude.com",
    "eu": "https://api.eu.amplitude.com",
}
# The documented endpoint URLs end in one of these; the others are derived from the host.
AMPLITUDE_PATHS = ("/2/httpapi", "/batch", "/identify")
PLATFORMS = ("apple", "google", "amazon", "roku", "web")
ALL_PLATFORMS = "all"

IdChoice = Literal["external_id", "nami_user_id"]


class IntegrationConfigError(ValueError):
    """Configuration problems, worded for the person who edits the file: every one found, so a
    file is mended in one pass (`problems`, one line each; the message joins them)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems: tuple[str, ...] = problems


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


class AmplitudeDeliveryTuning(DeliveryTuning):
    """Amplitude plans differ: a Starter project takes 10 events per request and 1,000 events/s.

    Both are Amplitude's own settings; mParticle's limits (100 batches, 256 KB a request) are the
    same for every account, and a batch holds one user's events, so an events-per-request cap
    means nothing there.
    """

    events_per_request: int = Field(default=AMPLITUDE_MAX_EVENTS_PER_REQUEST, ge=1, le=2000)
    # The project's rate (all processes together); unset: sent as fast as accepted, and paced
    # only once a 429 states the rate.
    events_per_second: float | None = Field(default=None, gt=0, le=1_000_000)


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
            raise ValueError(_unknown_types(unknown))
        if not value:
            raise ValueError("select at least one event type, or 'all'")
        return tuple(dict.fromkeys(value))

    @field_validator("event_renames")
    @classmethod
    def _known_renames(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SENDABLE_EVENT_TYPES))
        if unknown:
            raise ValueError(f"renames {_unknown_types(unknown)}")
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
    # One of the two, or neither for US1: a pod and a URL could disagree.
    pod: Literal["US1", "US2", "EU1", "AU1"] | None = None
    base_url: str | None = None
    credentials: MParticleCredentials
    customer_id: IdChoice = "external_id"
    # The schema's identity slot the workspace registered for the Nami user id (docs/mparticle.md).
    partner_identity: Literal["other", "other_id_2", "other_id_3", "other_id_4"] | None = None
    historical_after_days: int = Field(default=30, ge=1, le=3650)
    revenue: MParticleRevenue | None = None

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        if value not in (*PLATFORMS, ALL_PLATFORMS):
            raise ValueError(f"must be one of {', '.join((*PLATFORMS, ALL_PLATFORMS))}")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("pod") is not None:
            raise ValueError("give either pod or base_url, not both")
        return _http_url(value)

    @property
    def api_base(self) -> str:
        """The host (and any proxy prefix) without `/v2`: the paths are derived from it."""
        if self.base_url is None:
            return MPARTICLE_PODS[self.pod or DEFAULT_MPARTICLE_POD]
        return _without_suffix(self.base_url, MPARTICLE_PATHS)

    @property
    def bulk_url(self) -> str:
        return f"{self.api_base}/v2/bulkevents"

    @property
    def historical_url(self) -> str:
        return f"{self.api_base}/v2/bulkevents/historical"

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
    revenue: RevenueSettings | None = None
    delivery: AmplitudeDeliveryTuning = Field(default_factory=AmplitudeDeliveryTuning)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value in AMPLITUDE_ENDPOINTS:
            return value
        return _http_url(value)

    @property
    def api_base(self) -> str:
        """The host (and any proxy prefix): the endpoint as given, less a documented path."""
        if self.endpoint in AMPLITUDE_ENDPOINTS:
            return AMPLITUDE_ENDPOINTS[self.endpoint]
        return _without_suffix(self.endpoint, AMPLITUDE_PATHS)

    @property
    def httpapi_url(self) -> str:
        return f"{self.api_base}/2/httpapi"

    @property
    def batch_url(self) -> str:
        return f"{self.api_base}/batch"

    @property
    def identify_url(self) -> str:
        return f"{self.api_base}/identify"

    def secret_variables(self) -> tuple[str, ...]:
        return (self.credentials.api_key_env,)

    def api_key(self) -> str:
        return os.environ[self.credentials.api_key_env]


AnyIntegration = MParticleIntegration | AmplitudeIntegration
Integration = Annotated[AnyIntegration, Field(discriminator="type")]


def _unknown_types(unknown: list[str]) -> str:
    return (
        f"unknown event type(s): {', '.join(unknown)}; "
        f"the sendable types are {', '.join(SENDABLE_EVENT_TYPES)}"
    )


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"not an http(s) URL: {value!r}")
    if parsed.query or parsed.fragment:
        raise ValueError(f"a URL without query string or fragment, not {value!r}")
    return value


def _without_suffix(url: str, suffixes: tuple[str, ...]) -> str:
    """`url` without trailing slashes and without the first of `suffixes` it ends with."""
    base = url.rstrip("/")
    for suffix in suffixes:
        if base.endswith(suffix):
            return base.removesuffix(suffix).rstrip("/")
    return base


_ENTRY: Final = TypeAdapter(Integration)


def _entry_name(entry: Any, index: int) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) and name else f"#{index + 1}"


def _describe(error: ValidationError, name: str) -> list[str]:
    """Every problem of one entry, each naming the integration and the field."""
    problems = []
    for found in error.errors():
        location = list(found["loc"])
        if location and location[0] in ("mparticle", "amplitude"):
            location = location[1:]
        if found["type"] in ("union_tag_invalid", "union_tag_not_found"):
            location = ["type"]
        field = ".".join(str(part) for part in location) or "(entry)"
        message = found["msg"].removeprefix("Value error, ")
        problems.append(f"integration '{name}': field '{field}': {message}")
    return problems


def missing_variables(integration: AnyIntegration) -> list[str]:
    """The credential variables of `integration` that are not set (names, never values)."""
    return [name for name in integration.secret_variables() if not os.environ.get(name)]


def validate_integrations(
    document: Mapping[str, Any] | None, base_dir: Path | None = None
) -> tuple[tuple[AnyIntegration, ...], tuple[str, ...]]:
    """The valid integrations of a decoded YAML document, and every problem of the others;
    relative paths in it (a `revenue.rates_file`) start at `base_dir`, else the working folder."""
    document = document or {}
    if not isinstance(document, Mapping):
        raise IntegrationConfigError("the integrations file must be a mapping with 'integrations'")
    raw = document.get("integrations") or []
    if not isinstance(raw, list):
        raise IntegrationConfigError("'integrations' must be a list")
    problems: list[str] = []
    parsed: dict[str, AnyIntegration] = {}
    for index, entry in enumerate(raw):
        name = _entry_name(entry, index)
        try:
            integration = _ENTRY.validate_python(entry, context={BASE_DIR_CONTEXT: base_dir})
        except ValidationError as error:
            problems.extend(_describe(error, name))
            continue
        if integration.name in parsed:
            problems.append(
                f"integration '{name}': field 'name': another integration has this name"
            )
            continue
        parsed[integration.name] = integration
    return tuple(parsed.values()), tuple(problems)


def parse_integrations(
    document: Mapping[str, Any] | None, *, check_env: bool = True, base_dir: Path | None = None
) -> tuple[AnyIntegration, ...]:
    """Validate a decoded YAML document; with `check_env`, every credentials variable of an
    enabled integration must be set. Raises one `IntegrationConfigError` with every problem."""
    parsed, problems = validate_integrations(document, base_dir)
    if check_env:
        problems += tuple(
            f"integration '{integration.name}': field 'credentials': "
            f"environment variable {variable} is not set"
            for integration in parsed
            if integration.enabled
            for variable in missing_variables(integration)
        )
    if problems:
        raise IntegrationConfigError(*problems)
    for integration in parsed:
        if integration.type == "mparticle" and integration.platform == ALL_PLATFORMS:
            logger.warning(
                "integration '%s': platform 'all' is the legacy all-platforms feed; "
                "prefer one feed per platform",
                integration.name,
            )
    return parsed


def integrations_file_path() -> Path:
    configured = os.environ.get(INTEGRATIONS_FILE_VARIABLE)
    return Path(configured) if configured else DEFAULT_INTEGRATIONS_FILE


def integrations_folder(path: Path | None = None) -> Path:
    """Where relative paths in the integrations file start: the file's own folder."""
    return (path or integrations_file_path()).resolve().parent


def read_integrations_document(path: Path | None = None) -> Any:
    """The decoded YAML of the integrations file (`NAMI_INTEGRATIONS_FILE`, else
    `integrations.yaml`). No file at the default place means none yet (None); a file named
    explicitly must exist."""
    explicit = path is not None or bool(os.environ.get(INTEGRATIONS_FILE_VARIABLE))
    path = path or integrations_file_path()
    if not path.exists():
        if explicit:
            raise IntegrationConfigError(f"integrations file not found: {path}")
        return None
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        where = " ".join(str(error).split())  # one line: the parser's message spans several
        raise IntegrationConfigError(f"{path}: not valid YAML: {where}") from None


def load_integrations(
    path: Path | None = None, *, check_env: bool = True
) -> tuple[AnyIntegration, ...]:
    """The integrations of the integrations file, every problem raised at once."""
    document = read_integrations_document(path)
    return parse_integrations(document, check_env=check_env, base_dir=integrations_folder(path))
