"""What an emulator accepts and how much work it does per request, as one JSON-able value.

The same shape travels three ways: into a subprocess (`--settings` / `NAMI_EMULATOR_SETTINGS`),
over `POST /_emulator/config` (a partial update), and back from `GET /_emulator/config` (with
secrets left out), so it lives apart from the server and the client can import it cheaply.
"""

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Final

SETTINGS_VARIABLE: Final = "NAMI_EMULATOR_SETTINGS"

DEFAULT_MPARTICLE_KEY: Final = "emulator-mparticle-key"
DEFAULT_MPARTICLE_SECRET: Final = "emulator-mparticle-secret"
DEFAULT_AMPLITUDE_API_KEY: Final = "emulator-amplitude-key"


def _default_mparticle_credentials() -> dict[str, str]:
    return {DEFAULT_MPARTICLE_KEY: DEFAULT_MPARTICLE_SECRET}


def _default_amplitude_api_keys() -> list[str]:
    return [DEFAULT_AMPLITUDE_API_KEY]


@dataclass(frozen=True)
class EmulatorSettings:
    """Accepted credentials and the switches that trade realism for throughput.

    `amplitude_project_eps` is a per-api_key token bucket (events/s) for benchmarks that want a
    project-wide ceiling; 0 means no ceiling, as on a real project with no quota in sight.
    `amplitude_daily_id_quota` caps the events one user id or device id may send a project in a
    UTC day (0: no cap); past it, Amplitude answers 429 with `exceeded_daily_quota_users` /
    `exceeded_daily_quota_devices`.
    `validate_schema` off skips the mParticle JSON Schema (the size and attribute limits still
    apply); `record_payloads` off keeps counters, dedup and profiles but not the event bodies.
    """

    mparticle_credentials: dict[str, str] = field(default_factory=_default_mparticle_credentials)
    amplitude_api_keys: list[str] = field(default_factory=_default_amplitude_api_keys)
    amplitude_project_eps: float = 0.0
    amplitude_daily_id_quota: int = 0
    validate_schema: bool = True
    record_payloads: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.mparticle_credentials, dict) or not all(
            isinstance(key, str) and isinstance(secret, str)
            for key, secret in self.mparticle_credentials.items()
        ):
            raise ValueError("mparticle_credentials must map S2S keys to secrets (strings)")
        if not isinstance(self.amplitude_api_keys, list) or not all(
            isinstance(key, str) for key in self.amplitude_api_keys
        ):
            raise ValueError("amplitude_api_keys must be a list of strings")
        if isinstance(self.amplitude_project_eps, bool) or not isinstance(
            self.amplitude_project_eps, int | float
        ):
            raise ValueError("amplitude_project_eps must be a number (0 = no limit)")
        if self.amplitude_project_eps < 0:
            raise ValueError("amplitude_project_eps must be >= 0 (0 = no limit)")
        quota = self.amplitude_daily_id_quota
        if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
            raise ValueError("amplitude_daily_id_quota must be a whole number >= 0 (0 = no cap)")
        for name in ("validate_schema", "record_payloads"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a boolean")

    def updated(self, changes: dict[str, Any]) -> "EmulatorSettings":
        """These settings with `changes` applied; an unknown key is an error, not ignored."""
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown emulator settings: {', '.join(unknown)}")
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Everything, secrets included: only for handing settings to a process we start."""
        return {
            "mparticle_credentials": dict(self.mparticle_credentials),
            "amplitude_api_keys": list(self.amplitude_api_keys),
            "amplitude_project_eps": self.amplitude_project_eps,
            "amplitude_daily_id_quota": self.amplitude_daily_id_quota,
            "validate_schema": self.validate_schema,
            "record_payloads": self.record_payloads,
        }

    def public_view(self) -> dict[str, Any]:
        """What `GET /_emulator/config` shows: the mParticle keys, never their secrets."""
        view = self.to_json()
        view["mparticle_credentials"] = sorted(self.mparticle_credentials)
        return view

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EmulatorSettings":
        """Settings from their JSON form; keys left out keep their defaults."""
        if not isinstance(data, dict):
            raise ValueError("emulator settings must be a JSON object")
        return cls().updated(data)

    @classmethod
    def from_environment(cls) -> "EmulatorSettings":
        """Settings from `NAMI_EMULATOR_SETTINGS` (JSON), else the defaults."""
        raw = os.environ.get(SETTINGS_VARIABLE)
        return cls.from_json(json.loads(raw)) if raw else cls()
