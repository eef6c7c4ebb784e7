"""The faults a test asks for, as plain data: what `POST /_emulator/faults` takes and returns.

Kept apart from the engine that draws them (`faults.py`) so the control client can build and
check a plan without importing the server.
"""

from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

Api = Literal["mparticle", "amplitude"]
FaultKind = Literal[
    "throttle", "server_error", "slow", "drop", "partial_reject", "too_large", "answer"
]

APIS: Final[tuple[str, ...]] = get_args(Api)
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
SERVER_ERROR_STATUSES: Final = (500, 502, 503, 504)
# 503 means "not processed" on both APIs; the others may come after the work was done.
MAYBE_PROCESSED_STATUSES: Final = (500, 502, 504)


@dataclass(frozen=True)
class FaultRule:
    """One kind of fault, fired on a share (`rate`) of the requests it applies to.

    - `throttle`: 429, with `Retry-After: retry_after` (whole seconds, as HTTP has it) when set, without it when None.
    - `server_error`: `status` (500/502/503/504); `processed_share` of them (not for 503) are
      processed and recorded first, as the real APIs may have accepted a request they fail.
    - `slow`: waits `delay_seconds` before answering; it combines with one other fault.
    - `drop`: the connection breaks mid-response (the client sees a connection error or an
      incomplete read, never a status); `processed_share` of them are processed first.
    - `partial_reject`: `items` events (Amplitude, 400 listing their indexes, nothing ingested)
      or batches (mParticle: rejected inside a 202; a single `/v2/events` batch gets a 400).
    - `too_large`: 413 whatever the size.
    - `answer`: exactly `status` (any, e.g. 404, 405, 302, or 200), with `body`, `content_type`
      and a `Location` header when given: what a wrong URL, a proxy or a captive portal sends.

    `api` limits the rule to one API (None: both); `count` caps how many times it fires.
    """

    kind: FaultKind
    rate: float = 1.0
    api: Api | None = None
    count: int | None = None
    status: int | None = None
    retry_after: int | None = None
    processed_share: float = 0.0
    delay_seconds: float = 0.0
    items: int = 1
    body: str | None = None
    content_type: str | None = None
    location: str | None = None

    def __post_init__(self) -> None:
        self._check_types()
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if self.api is not None and self.api not in APIS:
            raise ValueError(f"api must be one of {APIS} or null")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0 or null (unlimited)")
        if not 0.0 <= self.processed_share <= 1.0:
            raise ValueError("processed_share must be between 0 and 1")
        if self.kind == "server_error":
            if self.status not in SERVER_ERROR_STATUSES:
                raise ValueError(f"server_error needs status in {SERVER_ERROR_STATUSES}")
            if self.processed_share and self.status not in MAYBE_PROCESSED_STATUSES:
                raise ValueError("a 503 is never processed: processed_share must be 0")
        elif self.kind == "answer":
            if self.status is None or not 100 <= self.status <= 599:
                raise ValueError("answer needs a status between 100 and 599")
        elif self.status is not None:
            raise ValueError("status only applies to server_error and answer")
        if self.kind != "answer" and (self.body, self.content_type, self.location) != (
            None,
            None,
            None,
        ):
            raise ValueError("body, content_type and location only apply to answer")
        if self.processed_share and self.kind not in ("server_error", "drop"):
            raise ValueError("processed_share only applies to server_error and drop")
        if self.retry_after is not None and (self.kind != "throttle" or self.retry_after < 0):
            raise ValueError("retry_after only applies to throttle and is whole seconds >= 0")
        if self.delay_seconds < 0 or (self.delay_seconds and self.kind != "slow"):
            raise ValueError("delay_seconds only applies to slow and must be >= 0")
        if self.items < 1:
            raise ValueError("items must be >= 1")

    def _check_types(self) -> None:
        """Rules arrive as JSON: a wrong type must fail here, not in the middle of a request."""
        for name in ("count", "status", "retry_after", "items"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be an integer")
        for name in ("body", "content_type", "location"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
        for name in ("rate", "processed_share", "delay_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")

    @property
    def label(self) -> str:
        """The name this fault is counted under in stats (e.g. `429_retry_after`, `503`)."""
        if self.kind == "throttle":
            return "429" if self.retry_after is None else "429_retry_after"
        if self.kind == "server_error":
            return str(self.status)
        if self.kind == "answer":
            return f"answer_{self.status}"
        return {"too_large": "413"}.get(self.kind, self.kind)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FaultRule":
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown fault rule fields: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class FaultPlan:
    """Rules tried in order on every API request; `seed` makes the draws repeatable."""

    rules: tuple[FaultRule, ...] = field(default_factory=tuple)
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [rule.to_json() for rule in self.rules]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FaultPlan":
        unknown = sorted(set(data) - {"seed", "rules"})
        if unknown:
            raise ValueError(f"unknown fault plan fields: {', '.join(unknown)}")
        rules = data.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
            raise ValueError("rules must be a list of objects")
        seed = data.get("seed", 0)
        if not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        return cls(rules=tuple(FaultRule.from_json(rule) for rule in rules), seed=seed)
