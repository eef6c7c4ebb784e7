"""Telling an API's answer from whatever else a URL can send back.

Only an API's verdict on an event dead-letters it. A 404, a 405, a redirect, or a 2xx page from a
proxy or captive portal says the request went to the wrong place or was never read as an event
request: the integration stops with one line naming the URL and the status, and its events stay
pending. The words here never hold a secret: URLs lose any user info and query string.
"""

from typing import Final
from urllib.parse import urlsplit, urlunsplit

from nami_pipelines.destinations.http import parse_json
from nami_pipelines.destinations.outcomes import CredentialsRejected, Stop, WrongDestination
from nami_pipelines.destinations.transport import HttpResponse

# Statuses a client retries whatever API it talks to: throttled, timeouts, servers down.
RETRIED_STATUSES: Final = frozenset({0, 408, 429})


def display_url(url: str | None) -> str:
    """The URL without user info, query or fragment (where secrets could hide)."""
    if not url:
        return "(no URL)"
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_retried(status: int) -> bool:
    """Transport errors (0), 408, 429 and 5xx: try again later, nothing decided."""
    return status in RETRIED_STATUSES or status >= 500


def is_redirect(status: int) -> bool:
    return 300 <= status < 400


def looks_like_html(response: HttpResponse) -> bool:
    """A web page (a proxy's, a portal's, a 404 page), not an API's JSON."""
    content_type = response.headers.get("content-type", "").lower()
    return "html" in content_type or response.body.lstrip()[:1] == "<"


def is_json_object(response: HttpResponse) -> bool:
    return isinstance(parse_json(response.body), dict)


def wrong_destination(api: str, response: HttpResponse, setting: str) -> Stop:
    """Stop: `api` did not answer; `setting` names the configuration field to check."""
    status = response.status
    if is_redirect(status):
        target = display_url(response.headers.get("location"))
        what = f"a redirect (HTTP {status}) to {target}, which is not followed"
    elif 200 <= status < 300:
        what = f"HTTP {status} with a body that is not {api}'s answer"
        if looks_like_html(response):
            what += " (an HTML page: a proxy or captive portal?)"
    else:
        what = f"HTTP {status}"
    reason = (
        f"wrong destination: POST {display_url(response.url)} answered {what}; "
        f"check the integration's {setting}"
    )
    return Stop(reason, WrongDestination)


def credentials_refused(api: str, response: HttpResponse, credential: str) -> Stop:
    """Stop: the API refused the credentials (named by kind, never by value)."""
    reason = (
        f"{api} refused the {credential} (HTTP {response.status} from "
        f"POST {display_url(response.url)})"
    )
    return Stop(reason, CredentialsRejected)
