"""The admin API's bearer tokens (``admin.tokens``, env ``CORE_ADMIN_TOKEN``) and who may bind where.

A token is written ``NAME:ACCESS:SECRET`` (ACCESS ``read`` or ``write``), several separated by
commas or whitespace; a bare ``SECRET`` is the ``admin`` token with write access. The name is
recorded in the history of every write made with it. Secrets are compared in constant time
(:func:`hmac.compare_digest` of their SHA-256 digests, like the gateway's API keys).

With no token configured, the admin listener binds loopback addresses only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from core.errors import CoreError

ACCESS = ("read", "write")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class AdminToken:
    """One configured token: its name (recorded as who wrote), its access and its secret's digest."""

    name: str
    access: str
    digest: bytes

    @property
    def may_write(self) -> bool:
        """``True`` for a read-write token."""
        return self.access == "write"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _parse_one(text: str) -> tuple[str, str, str]:
    if ":" not in text:
        return "admin", "write", text
    name, access, secret = ([*text.split(":", 2), "", ""])[:3]
    if not _NAME.match(name) or access not in ACCESS or not secret:
        raise ValueError(
            "tokens written NAME:ACCESS:SECRET (ACCESS read or write, NAME letters, digits, _ . -), "
            "or a bare SECRET; several separated by commas"
        )
    return name, access, secret


def check_tokens(value: Any) -> tuple[str, ...]:
    """The ``admin.tokens`` validator: a list of token strings, or one comma-separated string."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of tokens NAME:ACCESS:SECRET (in the environment: comma-separated)")
    names = [_parse_one(v)[0] for v in value]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"tokens with distinct names (named twice: {', '.join(twice)})")
    return tuple(value)


def tokens_of(values: tuple[str, ...]) -> list[AdminToken]:
    """The tokens of a validated ``admin.tokens`` value."""
    return [AdminToken(name, access, _digest(secret)) for name, access, secret in map(_parse_one, values)]


def secrets_of(values: tuple[str, ...]) -> list[str]:
    """The secrets of ``admin.tokens``, for the log redactor."""
    return [_parse_one(v)[2] for v in values]


def find_token(tokens: list[AdminToken], presented: str) -> AdminToken | None:
    """The token whose secret is ``presented``; every token is compared (constant time)."""
    digest = _digest(presented)
    found = None
    for token in tokens:
        if hmac.compare_digest(digest, token.digest):
            found = token
    return found


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost`` and the loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tokens: list[AdminToken]) -> None:
    """Refuse a non-loopback ``admin.host`` when no token is configured."""
    if not tokens and not is_loopback(host):
        raise CoreError(
            f"the admin API would listen on {host} with no token configured: anyone who reaches it "
            "could retry, replay and pause",
            hint="set admin.tokens / CORE_ADMIN_TOKEN (e.g. CORE_ADMIN_TOKEN=ops:write:SECRET), "
            "or keep admin.host on a loopback address (127.0.0.1)",
        )
