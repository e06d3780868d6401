"""Check a request against its trigger's ``auth``: API keys, Standard Webhooks signatures,
a provider's HMAC of the body.

Every comparison is constant-time (:func:`hmac.compare_digest`). A refusal is a
:class:`Denied`: ``401`` when credentials are missing, ``403`` when they are wrong, ``409``
when a Standard Webhooks message id was already accepted; its message says what is missing or
wrong, never which keys exist. No key, secret or presented credential is logged.

Replay memory: the ``webhook-id`` values accepted in the last ``2 x tolerance`` seconds, in
this gateway process's memory (at most :data:`REPLAY_MEMORY` per trigger, oldest forgotten
first). Several gateways do not share it: a replay sent to another gateway is not refused by it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from hookspecs import (
    ApiKey,
    Auth,
    HmacSignature,
    StandardWebhook,
    read_secrets,
    v1_signatures,
    webhook_digest,
    whsec_key,
)

#: Message ids one Standard Webhooks trigger remembers for replay protection.
REPLAY_MEMORY = 100_000

Headers = Mapping[bytes, bytes]


class Denied(Exception):
    """A request refused: ``status`` and a message for the caller."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class ApiKeyCheck:
    """API keys from ``Authorization: Bearer``, ``X-API-Key`` or HTTP Basic (the key as user)."""

    needs_body = False

    def __init__(self, auth: ApiKey, where: str) -> None:
        # only digests are kept: equal length, so comparing them reveals nothing of a key's length
        self._digests = [_digest(key.encode()) for key in read_secrets(auth.keys, where)]  # type: ignore[arg-type]

    @staticmethod
    def presented(headers: Headers) -> bytes | None:
        """The key the request carries, if any."""
        key = headers.get(b"x-api-key")
        if key:
            return key.strip()
        authorization = headers.get(b"authorization", b"")
        scheme, _, credentials = authorization.strip().partition(b" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == b"bearer" and credentials:
            return credentials
        if scheme == b"basic" and credentials:
            try:
                user, _, password = base64.b64decode(credentials, validate=True).partition(b":")
            except (binascii.Error, ValueError):
                raise Denied(403, "the HTTP Basic credentials are not valid base64") from None
            return user or password or None
        return None

    def client(self, headers: Headers) -> str:
        """The client's identity for the rate limit (a digest of its key); :class:`Denied` if none fits."""
        key = self.presented(headers)
        if key is None:
            raise Denied(401, "an API key is required: send it as 'Authorization: Bearer <key>', "
                              "'X-API-Key: <key>' or as the HTTP Basic user name",
                         ((b"www-authenticate", b'Bearer realm="core"'),))
        digest = _digest(key)
        if not any([hmac.compare_digest(digest, known) for known in self._digests]):
            raise Denied(403, "the API key is not accepted")
        return "key:" + digest[:8].hex()

    def verify(self, headers: Headers, body: bytes) -> bytes | None:
        """Nothing to check in the body: the key was checked by :meth:`client`."""
        return None

    def release(self, message_id: bytes) -> None:
        """Nothing to forget."""


class ReplayMemory:
    """Message ids accepted recently, forgotten after ``keep`` seconds or when over ``limit``."""

    def __init__(self, keep: float, limit: int = REPLAY_MEMORY) -> None:
        self.keep = keep
        self.limit = limit
        self._until: dict[bytes, float] = {}  # insertion order is expiry order (keep is constant)

    def reserve(self, message_id: bytes, now: float) -> bool:
        """Remember ``message_id``; ``False`` if it is remembered already."""
        until = self._until
        while until:
            oldest = next(iter(until))
            if until[oldest] > now and len(until) < self.limit:
                break
            del until[oldest]
        if message_id in until:
            return False
        until[message_id] = now + self.keep
        return True

    def release(self, message_id: bytes) -> None:
        """Forget ``message_id`` (its request was not stored, so the sender's retry must pass)."""
        self._until.pop(message_id, None)


_WEBHOOK_HEADERS = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")


class StandardWebhookCheck:
    """``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature``, HMAC-SHA256 of ``id.timestamp.body``."""

    needs_body = True

    def __init__(self, auth: StandardWebhook, where: str) -> None:
        self._keys = [whsec_key(s, where) for s in read_secrets(auth.secrets, where)]  # type: ignore[arg-type]
        self.tolerance = auth.tolerance
        self.replays = ReplayMemory(2 * auth.tolerance)

    def client(self, headers: Headers) -> str | None:
        """No client identity in the headers: the rate limit counts the client's address."""
        return None

    def verify(self, headers: Headers, body: bytes, now: float | None = None) -> bytes | None:
        """The accepted message id (reserved: :meth:`release` it if the request is not stored)."""
        missing = [name.decode() for name in _WEBHOOK_HEADERS if not headers.get(name)]
        if missing:
            raise Denied(401, f"a Standard Webhooks signature is required: missing header(s) {', '.join(missing)}")
        message_id, stamp, signatures = (headers[name].strip() for name in _WEBHOOK_HEADERS)
        now = time.time() if now is None else now
        if not stamp.isdigit() or len(stamp) > 12:
            raise Denied(403, "webhook-timestamp must be the Unix time in whole seconds")
        if abs(now - int(stamp)) > self.tolerance:
            raise Denied(403, f"webhook-timestamp is more than {self.tolerance:g} seconds away from the "
                              "gateway's clock: the message is too old (or the clocks differ)")
        expected = [webhook_digest(key, message_id, stamp, body) for key in self._keys]
        if not any(hmac.compare_digest(mac, sent) for sent in v1_signatures(signatures) for mac in expected):
            raise Denied(403, "no webhook-signature matches the body (v1, HMAC-SHA256 of id.timestamp.body)")
        if not self.replays.reserve(message_id, now):
            raise Denied(409, "this webhook-id was already received within the tolerance window: "
                              "a replay is refused (send a new message with a new id)")
        return message_id

    def release(self, message_id: bytes) -> None:
        self.replays.release(message_id)


class HmacCheck:
    """A provider's HMAC of the body in one header (``sha256=<hex>``, ``<base64>``...)."""

    needs_body = True

    def __init__(self, auth: HmacSignature, where: str) -> None:
        self._keys = [key.encode() for key in read_secrets(auth.secrets, where)]  # type: ignore[arg-type]
        self.auth = auth
        self._header = auth.header.encode("latin-1")
        self._prefix = auth.prefix.encode("latin-1")

    def client(self, headers: Headers) -> str | None:
        """No client identity in the headers: the rate limit counts the client's address."""
        return None

    def verify(self, headers: Headers, body: bytes) -> bytes | None:
        """``None`` if the header holds the HMAC of ``body`` under one of the secrets."""
        auth = self.auth
        value = headers.get(self._header, b"").strip()
        if not value:
            raise Denied(401, f"a signature is required: missing header {auth.header}")
        if not value.startswith(self._prefix):
            raise Denied(403, f"header {auth.header} must start with {auth.prefix!r}")
        encoded = value[len(self._prefix):]
        try:
            sent = bytes.fromhex(encoded.decode("ascii")) if auth.encoding == "hex" else base64.b64decode(
                encoded, validate=True)
        except (binascii.Error, ValueError):
            raise Denied(403, f"header {auth.header} is not {auth.encoding}") from None
        if not any([hmac.compare_digest(hmac.digest(key, body, auth.algorithm), sent)
                    for key in self._keys]):
            raise Denied(403, f"header {auth.header} does not match the body (HMAC-{auth.algorithm.upper()})")
        return None

    def release(self, message_id: bytes) -> None:
        """Nothing to forget: this scheme has no message id."""


Check = ApiKeyCheck | StandardWebhookCheck | HmacCheck


def check_for(auth: Auth, where: str) -> Check:
    """The check of ``auth``; :class:`PipelineError` if a key or secret cannot be read."""
    if isinstance(auth, ApiKey):
        return ApiKeyCheck(auth, where)
    if isinstance(auth, StandardWebhook):
        return StandardWebhookCheck(auth, where)
    return HmacCheck(auth, where)
