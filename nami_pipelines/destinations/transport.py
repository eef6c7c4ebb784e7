"""One POST and its answer, on urllib3's connection pools: keep-alive, timeouts, TLS verified
against the same CA bundle `requests` uses, and the proxies the environment names.

`requests` costs about 0.6 ms of CPU per request above urllib3 (it re-reads the environment's
proxies and CA settings, looks for a `.netrc` and builds a prepared request each time); an
mParticle day takes a request per hundred users, so that was a tenth of a delivery's CPU. The
environment is read here once per URL instead, by `requests`' own rules, so a proxy or CA bundle
set for `requests` applies as before.
"""

import os
import threading
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from nami_pipelines.destinations.form import FORM_HEADERS, form_encoded

USER_AGENT: Final = "nami-pipelines"
# What a transport error is called in the ledger's reasons and in `check`: the names `requests`
# gave them, which earlier reasons already carry.
_ERROR_NAMES: Final = (
    (NewConnectionError, "ConnectionError"),
    (ConnectTimeoutError, "ConnectTimeout"),
    (ReadTimeoutError, "ReadTimeout"),
    (ProxyError, "ProxyError"),
    (SSLError, "SSLError"),
    (DecodeError, "ContentDecodingError"),
    (ProtocolError, "ConnectionError"),
)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A response, or the transport error that stood in for one (`status` 0)."""

    status: int
    body: str
    headers: dict[str, str]
    error: str | None = None
    url: str = ""  # where the request went, so a stop can say so

    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class HttpTransport:
    """Keep-alive connections, up to `pool_size` per host, shared by the sending threads."""

    def __init__(self, *, timeout: float, pool_size: int) -> None:
        self.timeout = timeout
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._managers: dict[str, urllib3.PoolManager] = {}

    def _manager(self, url: str) -> urllib3.PoolManager:
        """The pools for `url`: direct, or through the proxy the environment names for it."""
        manager = self._managers.get(url)
        if manager is not None:
            return manager
        with self._lock:
            manager = self._managers.get(url)
            if manager is None:
                manager = self._new_manager(url)
                self._managers[url] = manager
        return manager

    def _new_manager(self, url: str) -> urllib3.PoolManager:
        options = {
            "maxsize": self.pool_size,
            "retries": False,
            "timeout": urllib3.Timeout(connect=self.timeout, read=self.timeout),
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or DEFAULT_CA_BUNDLE_PATH,
        }
        proxies = get_environ_proxies(url)
        proxy = proxies.get(urlsplit(url).scheme) or proxies.get("all")
        if proxy:
            return urllib3.ProxyManager(proxy, **options)
        return urllib3.PoolManager(**options)

    def post(
        self,
        url: str,
        *,
        data: bytes | dict[str, str],
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> HttpResponse:
        """POST `data` (a form when a dict); a transport error comes back as status 0."""
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        if isinstance(data, dict):
            data, sent = form_encoded(data), {**sent, **FORM_HEADERS}
        if auth is not None:
            sent.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        try:
            response = self._manager(url).request(
                "POST", url, body=data, headers=sent, redirect=False, retries=False
            )
        except HTTPError as error:
            return HttpResponse(status=0, body="", headers={}, error=_error_name(error), url=url)
        return HttpResponse(
            status=response.status,
            body=_text(response),
            headers={key.lower(): value for key, value in response.headers.items()},
            url=url,
        )


def _error_name(error: HTTPError) -> str:
    for kind, name in _ERROR_NAMES:
        if isinstance(error, kind):
            return name
    return "ConnectionError"


def _text(response: urllib3.BaseHTTPResponse) -> str:
    """The body as text, in the charset the answer names (UTF-8 if none): a proxy's page in
    another charset still reads, with replacement characters at worst."""
    content_type = response.headers.get("content-type", "")
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip("\"'")
    try:
        return response.data.decode(charset, errors="replace")
    except LookupError:
        return response.data.decode("utf-8", errors="replace")
