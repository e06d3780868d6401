"""What an HTTP trigger asks of the gateway's edge: who may call it (``auth=``) and which
browser origins may (``cors=``).

Keys and secrets are never written in code: a :class:`Secret` names the environment variable
or the file they are read from when the gateway starts, so they are in no repository and in
no log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

#: The HMAC algorithms :class:`HmacSignature` accepts.
HMAC_ALGORITHMS = ("sha1", "sha256", "sha512")


@dataclass(frozen=True, slots=True)
class Secret:
    """Where keys or secrets are read when the gateway starts: an environment variable
    (``env=``) or a file (``file=``), exactly one of them.

    The value holds one or more keys separated by whitespace (a file: one a line; lines starting
    with ``#`` are comments), so that a new key can be added before the old one is removed.
    """

    env: str | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if (self.env is None) == (self.file is None):
            raise ValueError("Secret takes exactly one of env= (a variable name) or file= (a path)")

    @property
    def where(self) -> str:
        """Where the value is read, for messages (never the value itself)."""
        return f"environment variable {self.env}" if self.env is not None else f"file {self.file}"


def _secrets(value: Secret | Sequence[Secret], scheme: str) -> tuple[Secret, ...]:
    found = (value,) if isinstance(value, Secret) else tuple(value)
    if not found or not all(isinstance(s, Secret) for s in found):
        raise ValueError(f"{scheme} takes a Secret(env=... | file=...) or a list of them")
    return found


@dataclass(frozen=True, slots=True)
class ApiKey:
    """API keys: the request carries one of ``keys`` as ``Authorization: Bearer <key>``,
    ``X-API-Key: <key>``, or HTTP Basic with the key as user name (what analytics SDKs send).

    Checked before the body is read. The rate limit counts each key as one client.
    """

    keys: Secret | Sequence[Secret]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", _secrets(self.keys, "ApiKey"))


@dataclass(frozen=True, slots=True)
class StandardWebhook:
    """`Standard Webhooks <https://www.standardwebhooks.com>`_ signatures: the headers
    ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
    (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, several separated by spaces).

    ``secrets`` hold ``whsec_<base64>`` secrets (several during a rotation: any one signs).
    A timestamp further than ``tolerance`` seconds from now is refused, and so is a
    ``webhook-id`` already accepted within that window (replay protection).
    """

    secrets: Secret | Sequence[Secret]
    tolerance: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "secrets", _secrets(self.secrets, "StandardWebhook"))
        if not self.tolerance > 0:
            raise ValueError(f"StandardWebhook: tolerance must be a positive number of seconds, not {self.tolerance!r}")


@dataclass(frozen=True, slots=True)
class HmacSignature:
    """A provider's HMAC of the body in one header, as GitHub (``X-Hub-Signature-256:
    sha256=<hex>``) or Shopify (``X-Shopify-Hmac-Sha256: <base64>``) send it.

    ``secrets`` are used as they are (bytes of the text); any one of them may sign.
    """

    secrets: Secret | Sequence[Secret]
    header: str
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    prefix: str = ""
    encoding: Literal["hex", "base64"] = "hex"

    def __post_init__(self) -> None:
        object.__setattr__(self, "secrets", _secrets(self.secrets, "HmacSignature"))
        object.__setattr__(self, "header", self.header.lower())
        if self.algorithm not in HMAC_ALGORITHMS:
            raise ValueError(f"HmacSignature: algorithm {self.algorithm!r} is not one of {', '.join(HMAC_ALGORITHMS)}")
        if self.encoding not in ("hex", "base64"):
            raise ValueError(f"HmacSignature: encoding {self.encoding!r} is not 'hex' or 'base64'")
        if not self.header:
            raise ValueError("HmacSignature: header names the header holding the signature")


#: What ``HttpTrigger(auth=...)`` takes.
Auth = ApiKey | StandardWebhook | HmacSignature


@dataclass(frozen=True, slots=True)
class Cors:
    """Cross-origin requests from browsers: the origins allowed (``"*"``: any), the methods
    (default: the trigger's) and request headers allowed; the preflight ``OPTIONS`` is answered
    and may be cached ``max_age`` seconds."""

    origins: Sequence[str] = ("*",)
    methods: Sequence[str] | None = None
    headers: Sequence[str] = field(default=("content-type", "authorization", "x-api-key"))
    max_age: int = 600

    def __post_init__(self) -> None:
        if isinstance(self.origins, str) or isinstance(self.headers, str):
            raise ValueError("Cors: origins and headers are lists of strings, not one string")
        object.__setattr__(self, "origins", tuple(o.rstrip("/") for o in self.origins))
        object.__setattr__(self, "headers", tuple(h.lower() for h in self.headers))
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))
