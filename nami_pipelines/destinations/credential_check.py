"""Asking a destination whether it accepts an integration's credentials, with a request that
carries no event: what `nami-pipelines check` reports, one line per integration."""

from dataclasses import dataclass
from typing import Final, Literal

from nami_pipelines.destinations.answers import display_url, is_redirect, is_retried
from nami_pipelines.destinations.transport import HttpResponse, HttpTransport

Verdict = Literal["accepted", "refused", "unreachable", "wrong destination"]
# A check is one question: a down destination should not keep the command waiting long.
CHECK_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """The answer to one check: the verdict, where the request went (no secret) and why."""

    verdict: Verdict
    url: str
    status: int | None
    detail: str

    @property
    def passed(self) -> bool:
        return self.verdict == "accepted"

    def describe(self) -> str:
        status = "no answer" if self.status is None else f"HTTP {self.status}"
        return f"{self.verdict}: {status} from POST {self.url}: {self.detail}"


def check_transport(timeout_seconds: float) -> HttpTransport:
    """A connection for the one check request, waiting no longer than a check should."""
    return HttpTransport(timeout=min(timeout_seconds, CHECK_TIMEOUT_SECONDS), pool_size=1)


def checked(verdict: Verdict, response: HttpResponse, detail: str) -> CredentialCheck:
    status = None if response.status == 0 else response.status
    return CredentialCheck(verdict, display_url(response.url), status, detail)


def undecided(response: HttpResponse, api: str, setting: str) -> CredentialCheck:
    """An answer that says nothing about the credentials: no answer, a busy or failing API, or
    something that is not the API at all."""
    if response.status == 0:
        return checked("unreachable", response, f"no connection ({response.error})")
    if is_retried(response.status):
        return checked("unreachable", response, f"{api} is busy or failing; try again later")
    if is_redirect(response.status):
        target = display_url(response.headers.get("location"))
        return checked("wrong destination", response, f"redirected to {target}; check {setting}")
    return checked("wrong destination", response, f"not {api}'s answer; check {setting}")
