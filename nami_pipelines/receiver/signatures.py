"""Webhook signature schemes, by name. Nami's docs say a `nami-signature` header "allows for
validation" but not how it is computed, so the scheme is a setting (docs/webhooks.md): another
scheme is one more entry in `SIGNATURE_SCHEMES`, and the receiver does not change."""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

SIGNATURE_HEADER: Final = "nami-signature"
HMAC_SHA256: Final = "hmac-sha256"
NO_SIGNATURE: Final = "none"
_HEX_PREFIX: Final = "sha256="


@dataclass(frozen=True, slots=True)
class SignatureScheme:
    """`verify(raw_body, header, secret)` gives the reason a body is refused, or None."""

    name: str
    needs_secret: bool
    verify: Callable[[bytes, str | None, bytes], str | None]


def _verify_hmac_sha256(raw_body: bytes, header: str | None, secret: bytes) -> str | None:
    """Lowercase hex HMAC-SHA256 of the raw body (optionally prefixed `sha256=`), compared in
    constant time; computed before the body is parsed, so nothing unsigned is ever read."""
    if not header:
        return f"missing {SIGNATURE_HEADER} header"
    given = header.strip()
    if given.lower().startswith(_HEX_PREFIX):
        given = given[len(_HEX_PREFIX) :]
    expected = hmac.new(secret, raw_body, hashlib.sha256).hexdigest().encode("ascii")
    if not hmac.compare_digest(expected, given.lower().encode("utf-8", errors="replace")):
        return f"wrong {SIGNATURE_HEADER}"
    return None


def _accept_unsigned(_raw_body: bytes, _header: str | None, _secret: bytes) -> None:
    return None


SIGNATURE_SCHEMES: Final[dict[str, SignatureScheme]] = {
    HMAC_SHA256: SignatureScheme(HMAC_SHA256, True, _verify_hmac_sha256),
    NO_SIGNATURE: SignatureScheme(NO_SIGNATURE, False, _accept_unsigned),
}


def sign_hmac_sha256(raw_body: bytes, secret: str) -> str:
    """The header value a sender computes for `hmac-sha256` (for senders and tests)."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
