"""The dashboard's login session: a signed cookie naming the admin token's name and access
(never the token itself), its expiry and the session's CSRF token.

The cookie is ``HttpOnly`` and ``SameSite=Strict``, and ``Secure`` when the page is served
over https (on a plain-http loopback listener a browser would drop a ``Secure`` cookie, so it
is left off there). It is signed with HMAC-SHA256 by a key made when the process starts: a
restart ends every session. Every form that writes carries the session's CSRF token, compared
in constant time.

The login form, posted before there is a session, is bound the same way to a pre-session
cookie (:data:`LOGIN_COOKIE`, signed, as strict): it holds a random token the form carries, so
another site cannot log a browser in (a login CSRF). A login replaces it with the session,
whose CSRF token is new.
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
LOGIN_COOKIE = "core_admin_login"
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


def set_cookie(response: Response, request: Request, value: str, max_age: int = LIFETIME,
               name: str = COOKIE) -> None:
    """Set (or, ``max_age`` 0, clear) the session cookie (or cookie ``name``): HttpOnly,
    SameSite=Strict, Secure on https."""
    response.set_cookie(
        name, value, max_age=max_age, path="/admin/", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )


def _bound_login_token(request: Request, signer: Signer) -> str | None:
    """The token of the request's pre-session cookie; ``None`` when missing or tampered with."""
    found = signer.unsign(request.cookies.get(LOGIN_COOKIE, ""))
    if isinstance(found, list) and len(found) == 2 and found[0] == "login" and isinstance(found[1], str):
        return found[1]
    return None


def login_token(request: Request, signer: Signer) -> str:
    """The login form's CSRF token: the one of the request's pre-session cookie, else a new one."""
    return _bound_login_token(request, signer) or secrets.token_urlsafe(24)


def set_login_cookie(response: Response, request: Request, signer: Signer, token: str) -> None:
    """Bind the login form's CSRF ``token`` to the browser (for :data:`LIFETIME`)."""
    set_cookie(response, request, signer.sign(["login", token]), name=LOGIN_COOKIE)


def login_ok(request: Request, signer: Signer, presented: str | None) -> bool:
    """Whether a posted login form carries the token of the request's pre-session cookie."""
    bound = _bound_login_token(request, signer)
    return bound is not None and bool(presented) and hmac.compare_digest(bound.encode(), str(presented).encode())


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Whether a form's CSRF token is the session's (constant time)."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())
