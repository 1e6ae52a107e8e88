"""BinderHub's build tokens: the HS256 JSON Web Token a ``/v2/`` page carries and the
build API checks, written with the standard library (binderhub/base.py, main.py).

The page mints ``{"exp", "aud": "<provider>/<spec>", "origin"}``, ``origin`` being the
request's ``Origin`` (its host[:port]) or else its ``Host``. A launch that brings a token
must bring a valid one for the same spec, from the same origin, or it is refused with
``403 Invalid build token``. Members of a federation share the secret, so that a token
minted by one verifies on another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

#: BinderHub's ``build_token_expires_seconds`` default.
EXPIRES_SECONDS = 300
#: The secret every member of ``fedredirect dev`` shares, as hex like BinderHub's
#: ``build_token_secret`` in text form. Not a secret at all: for the dev stack and tests.
DEV_SECRET = hashlib.sha256(b"fedredirect dev build token secret").hexdigest()
_HEADER = {"alg": "HS256", "typ": "JWT"}


class InvalidToken(ValueError):
    """The token is malformed, badly signed, expired, or for another spec."""


def secret_bytes(secret_hex: str) -> bytes:
    """The key of a hex secret (BinderHub reads a text ``build_token_secret`` as hex)."""
    try:
        return bytes.fromhex(secret_hex)
    except ValueError:
        raise ValueError(
            "build_token_secret must be hex digits, e.g. `openssl rand -hex 32`"
        ) from None


def token_origin(origin: str | None, host: str | None) -> str:
    """The origin a token names and is checked against: the ``Origin`` header's
    host[:port], else the ``Host`` header, else ""."""
    if origin is not None:
        return urlsplit(origin).netloc
    return host or ""


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except ValueError as exc:
        raise InvalidToken(f"bad base64: {exc}") from exc


def _sign(key: bytes, signing_input: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def encode(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 JWT of ``claims``, byte for byte what PyJWT's ``jwt.encode`` gives."""
    header = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = header + b"." + payload
    return (signing_input + b"." + _b64(_sign(key, signing_input))).decode("ascii")


def mint(key: bytes, audience: str, origin: str, now: float) -> str:
    """The token of a ``/v2/<audience>`` page served to ``origin`` at ``now``."""
    claims = {"exp": int(now) + EXPIRES_SECONDS, "aud": audience, "origin": origin}
    return encode(claims, key)


def decode(token: str, key: bytes, audience: str, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid token, checked as PyJWT's ``jwt.decode(token, key,
    audience=audience, algorithms=["HS256"])`` checks them; InvalidToken otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not enough segments")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken(f"bad JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidToken("the specified alg value is not allowed")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    if not hmac.compare_digest(_sign(key, signing_input), _unb64(parts[2])):
        raise InvalidToken("signature verification failed")
    if not isinstance(claims, dict):
        raise InvalidToken("the payload is not a JSON object")
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int | float) or isinstance(exp, bool)):
        raise InvalidToken("expiration time (exp) must be a number")
    if exp is not None and exp <= now:
        raise InvalidToken("signature has expired")
    aud = claims.get("aud")
    if aud is None:
        raise InvalidToken('token is missing the "aud" claim')
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise InvalidToken("audience doesn't match")
    return claims
