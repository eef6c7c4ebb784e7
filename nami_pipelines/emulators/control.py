"""A small typed client for a running emulator's `/_emulator` endpoints.

Tests, benchmarks and the demo steer the emulator only through HTTP, like any other client,
so they work the same against an emulator in a subprocess or on another port.
"""

from typing import Any

import requests

from nami_pipelines.emulators.fault_plan import Api, FaultPlan, FaultRule

CONTROL_PREFIX = "/_emulator"


class EmulatorError(RuntimeError):
    """The emulator refused a control call (bad parameter or body)."""


class EmulatorClient:
    """Reads what the emulator received and changes its settings and faults."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    @property
    def mparticle_url(self) -> str:
        """The base to give an mParticle client, as `https://s2s.mparticle.com/v2`."""
        return f"{self.url}/v2"

    @property
    def amplitude_url(self) -> str:
        """The HTTP V2 endpoint to give an Amplitude client (`/batch` and `/identify` beside it)."""
        return f"{self.url}/2/httpapi"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._session.request(
            method, f"{self.url}{CONTROL_PREFIX}{path}", timeout=self.timeout, **kwargs
        )
        if response.status_code != 200:
            raise EmulatorError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def stats(self) -> dict[str, Any]:
        """`{"mparticle": {...}, "amplitude": {...}}`, shaped as `ApiRecorder.stats` says."""
        return self._call("GET", "/stats")

    def received(
        self, api: Api, kind: str = "events", offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded payloads in arrival order: accepted unique events by default; also
        `attribute_updates` (mParticle), `identifications` (Amplitude) and `rejected`."""
        params: dict[str, Any] = {"api": api, "kind": kind, "offset": offset}
        if limit is not None:
            params["limit"] = limit
        return self._call("GET", "/received", params=params)["items"]

    def profiles(self, api: Api) -> list[dict[str, Any]]:
        """Each user's current attributes: `{credential, user, attributes, updates, last_update_seq}`."""
        return self._call("GET", "/profiles", params={"api": api})["items"]

    def reset(self) -> None:
        """Clears records, stats, rate history and faults; settings stay."""
        self._call("POST", "/reset")

    def config(self) -> dict[str, Any]:
        """The settings, with the mParticle keys listed but never their secrets."""
        return self._call("GET", "/config")

    def configure(
        self,
        *,
        mparticle_credentials: dict[str, str] | None = None,
        amplitude_api_keys: list[str] | None = None,
        amplitude_project_eps: float | None = None,
        amplitude_daily_id_quota: int | None = None,
        validate_schema: bool | None = None,
        record_payloads: bool | None = None,
    ) -> dict[str, Any]:
        """Changes the settings given (None leaves one as it is; eps 0 means no limit)."""
        changes = {
            "mparticle_credentials": mparticle_credentials,
            "amplitude_api_keys": amplitude_api_keys,
            "amplitude_project_eps": amplitude_project_eps,
            "amplitude_daily_id_quota": amplitude_daily_id_quota,
            "validate_schema": validate_schema,
            "record_payloads": record_payloads,
        }
        payload = {name: value for name, value in changes.items() if value is not None}
        return self._call("POST", "/config", json=payload)

    def inject_faults(self, *rules: FaultRule, seed: int = 0) -> dict[str, Any]:
        """Replaces the fault plan; with no rule, clears it."""
        plan = FaultPlan(rules=rules, seed=seed)
        return self._call("POST", "/faults", json=plan.to_json())

    def faults(self) -> dict[str, Any]:
        """The plan in force and how many times each rule may still fire."""
        return self._call("GET", "/faults")

    def close(self) -> None:
        self._session.close()
