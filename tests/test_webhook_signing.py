"""Standard Webhooks signing (hookspecs): checked by an independent implementation, the
``standardwebhooks`` package, during a rotation too (several signatures at once)."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from hookspecs import PipelineError, sign_webhook, v1_signatures, whsec_key

OLD = "whsec_" + base64.b64encode(b"old-secret-bytes-0123456789abcdef").decode()
NEW = "whsec_" + base64.b64encode(b"new-secret-bytes-0123456789abcdef").decode()


def headers(keys: list[bytes], body: bytes, message_id: str = "msg_1") -> dict[str, str]:
    stamp = int(time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(keys, message_id, stamp, body),
    }


def test_a_signature_verifies_with_the_reference_library() -> None:
    body = b'{"order": 42}'
    assert Webhook(NEW).verify(body, headers([whsec_key(NEW, "test")], body)) == {"order": 42}


def test_a_rotation_signs_with_every_secret_and_each_receiver_verifies() -> None:
    body = b'{"order": 42}'
    signed = headers([whsec_key(OLD, "test"), whsec_key(NEW, "test")], body)
    assert len(v1_signatures(signed["webhook-signature"].encode())) == 2
    assert Webhook(OLD).verify(body, signed) == {"order": 42}
    assert Webhook(NEW).verify(body, signed) == {"order": 42}


def test_a_changed_body_does_not_verify() -> None:
    signed = headers([whsec_key(NEW, "test")], b'{"order": 42}')
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(b'{"order": 43}', signed)


def test_a_secret_that_is_not_whsec_base64_is_refused_without_showing_it() -> None:
    with pytest.raises(PipelineError, match="not 'whsec_' followed by base64") as caught:
        whsec_key("whsec_!!not-base64!!", "destination 'hooks'")
    assert "!!not-base64!!" not in str(caught.value)
