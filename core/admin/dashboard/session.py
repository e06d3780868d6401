"""The dashboard's login session: a signed cookie naming the admin token's name and access
(never the token itself), its expiry and the session's CSRF token.

The cookie is ``HttpOnly`` and ``SameSite=Strict``, and ``Secure`` when the page is served
over https (on a plain-http loopback listener a browser would drop a ``Secure`` cookie, so it
is left off there). It is signed with HMAC-SHA256 by a key made when the process starts: a
restart ends every session. Every form that writes carries the session's CSRF token, compared
in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "core_admin_session"
#: How long a login lasts, in seconds.
LIFETIME = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """Who is logged in (the token's name), whether they may write, and the CSRF token."""

    who: str
    may_write: bool
    csrf: str
    expires: int


class Signer:
    """Signs and reads session cookies with a per-process key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()).decode().rstrip("=")

    def sign(self, value: object) -> str:
        """``value`` (JSON) encoded and signed, fit for a cookie."""
        body = base64.urlsafe_b64encode(orjson.dumps(value))
        return f"{body.decode()}.{self._mac(body)}"

    def unsign(self, signed: str) -> object:
        """The value :meth:`sign` signed; ``None`` when unsigned or tampered with."""
        body, _, mac = signed.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(body.encode())):
            return None
        try:
            return orjson.loads(base64.urlsafe_b64decode(body))
        except ValueError:
            return None

    def dump(self, session: Session) -> str:
        """The cookie value of ``session``."""
        return self.sign([session.who, session.may_write, session.csrf, session.expires])

    def load(self, value: str) -> Session | None:
        """The session of a cookie value; ``None`` when unsigned, tampered with or expired."""
        found = self.unsign(value)
        if not isinstance(found, list) or len(found) != 4:
            return None
        who, may_write, csrf, expires = found
        if not isinstance(expires, int) or expires < time.time():
            return None
        return Session(str(who), bool(may_write), str(csrf), expires)


def new_session(who: str, may_write: bool) -> Session:
    """A fresh session of token ``who`` with a new CSRF token."""
    return Session(who, may_write, secrets.token_urlsafe(24), int(time.time()) + LIFETIME)


def set_cookie(response: Response, request: Request, value: str, max_age: int = LIFETIME) -> None:
    """Set (or, ``max_age`` 0, clear) the session cookie: HttpOnly, SameSite=Strict, Secure on https."""
    response.set_cookie(
        COOKIE, value, max_age=max_age, path="/admin/", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Whether a form's CSRF token is the session's (constant time)."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())
