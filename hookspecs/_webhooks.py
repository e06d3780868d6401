"""Standard Webhooks signatures, shared by the gateway (which verifies them on HTTP triggers) and
by destinations that send webhooks (which sign them): the ``whsec_`` secrets, the v1 signature of
``id.timestamp.body``, and reading the secrets a :class:`~hookspecs.Secret` names.

Messages name where a secret was looked for (the variable, the file), never its value.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Mapping, Sequence

from hookspecs._edge import Secret
from hookspecs._errors import PipelineError


def read_secrets(secrets: Sequence[Secret], where: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every key held by ``secrets``: whitespace-separated in a variable, one a line in a file.

    :raises PipelineError: a variable not set, a file not readable, or nothing in them.
    """
    environ = os.environ if environ is None else environ
    values: list[str] = []
    for secret in secrets:
        if secret.env is not None:
            text = environ.get(secret.env)
            if text is None:
                raise PipelineError(
                    f"{where}: its auth reads the {secret.where}, which is not set",
                    hint=f"export {secret.env}=<key> before starting the service",
                )
        else:
            assert secret.file is not None
            try:
                with open(secret.file, encoding="utf-8") as file:
                    text = "\n".join(line for line in file if not line.lstrip().startswith("#"))
            except (OSError, UnicodeDecodeError) as exc:
                raise PipelineError(
                    f"{where}: its auth reads the {secret.where}, which cannot be read: "
                    f"{getattr(exc, 'strerror', None) or type(exc).__name__}",
                    hint="create the file (one key a line) readable by the service",
                ) from None
        found = text.split()
        if not found:
            raise PipelineError(
                f"{where}: the {secret.where} holds no key",
                hint="put at least one key in it (several separated by whitespace)",
            )
        values.extend(found)
    return values


def whsec_key(secret: str, where: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (padding optional, as the reference libraries accept)."""
    text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise PipelineError(
            f"{where}: a StandardWebhook secret is not 'whsec_' followed by base64",
            hint="use the secret as the sender shows it, e.g. whsec_MfKQ9r8GKYqrTwjU...",
        )
    return key


def webhook_digest(key: bytes, message_id: bytes, timestamp: bytes, body: bytes) -> bytes:
    """The v1 signature's HMAC-SHA256 of ``id.timestamp.body``."""
    return hmac.digest(key, b"%s.%s.%s" % (message_id, timestamp, body), "sha256")


def sign_webhook(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,<base64>`` under each key, space-separated (several
    keys during a rotation, so that a receiver knowing any one of them verifies the message)."""
    mid, stamp = message_id.encode(), str(timestamp).encode()
    return " ".join("v1," + base64.b64encode(webhook_digest(key, mid, stamp, body)).decode() for key in keys)


def v1_signatures(header: bytes) -> list[bytes]:
    """The decoded ``v1,<base64>`` signatures of a ``webhook-signature`` header; others ignored."""
    found = []
    for token in header.split():
        version, _, encoded = token.partition(b",")
        if version == b"v1":
            try:
                found.append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                continue
    return found
