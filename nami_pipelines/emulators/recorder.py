"""What one emulated API has seen: counters, dedup ids, accepted payloads and user profiles.

Counters are kept for the API as a whole and per credential (mParticle S2S key, Amplitude
api_key) in one `Counter` each, under flat names that `stats()` nests. Secrets never reach
this module, so stats and records cannot leak them.
"""

import time
from collections import Counter
from typing import Any, Final

from nami_pipelines.emulators.fault_plan import Api

RECORD_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "mparticle": ("events", "attribute_updates", "rejected"),
    "amplitude": ("events", "identifications", "rejected"),
}

_RESPONSE = "response:"
_REASON = "reason:"
_FAULT = "fault:"
_HISTORICAL_DROP = "historical_drop:"


def _prefixed(counts: Counter[str], prefix: str) -> dict[str, int]:
    return {
        name.removeprefix(prefix): value
        for name, value in sorted(counts.items())
        if name.startswith(prefix)
    }


def _render(api: Api, counts: Counter[str]) -> dict[str, Any]:
    """Nests flat counter names into the stats shape documented on `ApiRecorder.stats`."""
    rejected: dict[str, Any] = {
        "requests": counts["rejected_requests"],
        "events": counts["rejected_events"],
        "reasons": _prefixed(counts, _REASON),
    }
    view: dict[str, Any] = {
        "requests": counts["requests"],
        "responses": _prefixed(counts, _RESPONSE),
        "events": counts["events"],
        "unique_events": counts["unique_events"],
        "duplicate_events": counts["duplicate_events"],
        "rejected": rejected,
        "attribute_updates": counts["attribute_updates"],
        "faults": _prefixed(counts, _FAULT),
        "processed_before_failure": counts["processed_before_failure"],
    }
    if api == "mparticle":
        view["batches"] = counts["batches"]
        rejected["batches"] = counts["rejected_batches"]
        view["historical"] = {
            "batches": counts["historical_batches"],
            "events": counts["historical_events"],
            "unique_events": counts["historical_unique_events"],
            "dropped_events": counts["historical_dropped_events"],
            "dropped_reasons": _prefixed(counts, _HISTORICAL_DROP),
        }
    else:
        view["identifies"] = counts["identifies"]
    return view


class Tally(Counter[str]):
    """The counts of one request, gathered while it is handled and added in one go."""

    def reason(self, reason: str, amount: int = 1) -> None:
        """A rejection reason, counted in the unit it applies to (request, batch or event)."""
        self[f"{_REASON}{reason}"] += amount

    def reject_request(self, reason: str | None, events: int = 0) -> None:
        """The whole request refused; `reason` None when its reasons were counted per event."""
        self["rejected_requests"] += 1
        self["rejected_events"] += events
        if reason is not None:
            self.reason(reason)

    def historical_drop(self, reason: str, amount: int) -> None:
        self["historical_dropped_events"] += amount
        self[f"{_HISTORICAL_DROP}{reason}"] += amount

    def response(self, status: int | str) -> None:
        self[f"{_RESPONSE}{status}"] += 1


class ApiRecorder:
    """Everything one API accepted or refused since the last reset."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.record_payloads = True
        self.reset()

    def reset(self) -> None:
        self._totals: Counter[str] = Counter()
        self._per_credential: dict[str, Counter[str]] = {}
        self._seen_ids: dict[str, set[str]] = {}
        self._records: dict[str, list[dict[str, Any]]] = {
            kind: [] for kind in RECORD_KINDS[self.api]
        }
        self._profiles: dict[tuple[str, str], dict[str, Any]] = {}
        self._sequence = 0

    def add(self, credential: str | None, tally: Tally) -> None:
        """Adds one request's counts to the API totals and, once the request is authenticated,
        to its credential: two updates per request, whatever its size."""
        self._totals.update(tally)
        if credential is not None:
            self._per_credential.setdefault(credential, Counter()).update(tally)

    def count_fault(self, label: str) -> None:
        """Injected faults are counted per API only: most fire before a request is authenticated."""
        self._totals[f"{_FAULT}{label}"] += 1

    def is_new(self, credential: str, dedup_id: object) -> bool:
        """True the first time a credential sends this id; an event without an id is always new."""
        if dedup_id is None:
            return True
        seen = self._seen_ids.setdefault(credential, set())
        key = str(dedup_id)
        if key in seen:
            return False
        seen.add(key)
        return True

    def record(self, kind: str, entry: dict[str, Any]) -> None:
        """Keeps an accepted payload (or a rejection) with its arrival sequence number and
        `recorded_at`, the wall-clock Unix time it was recorded (for an event: when it was
        accepted), so a benchmark can time an event from its source to its acceptance."""
        self._sequence += 1
        if self.record_payloads:
            entry["seq"] = self._sequence
            entry["recorded_at"] = time.time()
            self._records[kind].append(entry)

    def profile_to_update(self, credential: str, user: str) -> dict[str, Any]:
        """The user's current attributes, for the caller to change now: profiles change in
        arrival order, and `last_update_seq` shows where in that order the last change came."""
        self._sequence += 1
        profile = self._profiles.get((credential, user))
        if profile is None:
            profile = {"credential": credential, "user": user, "attributes": {}, "updates": 0}
            self._profiles[(credential, user)] = profile
        profile["updates"] += 1
        profile["last_update_seq"] = self._sequence
        return profile["attributes"]

    def records(self, kind: str, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        if kind not in self._records:
            raise ValueError(f"kind must be one of {', '.join(self._records)}")
        entries = self._records[kind]
        return entries[offset:] if limit is None else entries[offset : offset + limit]

    def profiles(self) -> list[dict[str, Any]]:
        return list(self._profiles.values())

    def stats(self) -> dict[str, Any]:
        """Totals plus `per_credential`, each shaped as:

        requests, responses {status: n}, events, unique_events, duplicate_events,
        rejected {requests, events, reasons {reason: n}}, attribute_updates,
        faults {label: n}, processed_before_failure; mParticle adds batches,
        rejected.batches and historical {batches, events, unique_events, dropped_events,
        dropped_reasons}; Amplitude adds identifies.
        """
        view = _render(self.api, self._totals)
        view["per_credential"] = {
            credential: _render(self.api, counts)
            for credential, counts in sorted(self._per_credential.items())
        }
        return view
