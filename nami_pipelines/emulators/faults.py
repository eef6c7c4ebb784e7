"""Draws the injected faults for each API request, repeatably under the plan's seed.

All draws come from one `random.Random(seed)`, in the order requests finish arriving: the
app serves every request on one event loop and draws as soon as a body is read, so the same
sequence of requests meets the same faults run after run.
"""

import random
from dataclasses import dataclass
from typing import Any

from nami_pipelines.emulators.fault_plan import Api, FaultPlan, FaultRule


@dataclass(frozen=True)
class PartialReject:
    """Which items (events or batches) of a request an injected partial 400 rejects."""

    items: int
    seed: int

    def pick(self, total: int) -> list[int]:
        """`items` indexes out of `total`, sorted; the same for a given draw."""
        chosen = random.Random(self.seed).sample(range(total), min(self.items, total))
        return sorted(chosen)


@dataclass(frozen=True)
class Decision:
    """What happens to one request: an optional delay, then at most one fault."""

    delay_seconds: float = 0.0
    rule: FaultRule | None = None
    processed_first: bool = False
    partial_reject: PartialReject | None = None


NO_FAULT = Decision()


class FaultInjector:
    """Holds the current plan, its random stream and how many times each rule may still fire."""

    def __init__(self) -> None:
        self.install(FaultPlan())

    def install(self, plan: FaultPlan) -> None:
        """Replaces the plan; the random stream restarts from the plan's seed."""
        self._plan = plan
        self._random = random.Random(plan.seed)
        self._remaining = [rule.count for rule in plan.rules]

    def view(self) -> dict[str, Any]:
        """The plan as installed, with each rule's remaining occurrences (null: unlimited)."""
        view = self._plan.to_json()
        for rule_view, remaining in zip(view["rules"], self._remaining, strict=True):
            rule_view["remaining"] = remaining
        return view

    def draw(self, api: Api, has_items: bool) -> Decision:
        """Tries each rule that applies to `api`; slow rules add a delay, the first other rule
        that fires is the fault. `has_items` is false where a partial reject means nothing
        (Amplitude's Identify API)."""
        if not self._plan.rules:
            return NO_FAULT
        delay = 0.0
        chosen: FaultRule | None = None
        for index, rule in enumerate(self._plan.rules):
            if rule.api not in (None, api) or self._remaining[index] == 0:
                continue
            if rule.kind == "partial_reject" and not has_items:
                continue
            if chosen is not None and rule.kind != "slow":
                continue
            if self._random.random() >= rule.rate:
                continue
            remaining = self._remaining[index]
            if remaining is not None:
                self._remaining[index] = remaining - 1
            if rule.kind == "slow":
                delay = max(delay, rule.delay_seconds)
            else:
                chosen = rule
        if chosen is None:
            return Decision(delay_seconds=delay)
        processed_first = (
            chosen.processed_share > 0 and self._random.random() < chosen.processed_share
        )
        partial = (
            PartialReject(items=chosen.items, seed=self._random.getrandbits(32))
            if chosen.kind == "partial_reject"
            else None
        )
        return Decision(delay, chosen, processed_first, partial)
