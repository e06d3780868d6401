"""Per-trigger authentication: the matrix of each scheme through real HTTP, and the Standard
Webhooks published test vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from pathlib import Path

import httpx
import pytest

from core.errors import PipelineError
from core.gateway.auth import Denied, ReplayMemory, StandardWebhookCheck
from hookspecs import ApiKey, HmacSignature, HttpTrigger, Secret, Source, StandardWebhook
from tests.gateway_kit import count, opened, serving

KEY, OLD_KEY = "ck_live_7f1d9a", "ck_old_42c0e3"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_NEW = "whsec_" + base64.b64encode(b"a brand new secret of 32 bytes!!").decode()
BODY = b'{"data": {"order": 1}}'

# The Standard Webhooks libraries' shared test vector (libraries/*/tests of the spec's repository).
VECTOR_ID, VECTOR_TS, VECTOR_BODY = b"msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
VECTOR_SIGNATURE = b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def sign(secret: str, message_id: str, stamp: int, body: bytes) -> str:
    """A Standard Webhooks signature, computed here independently of the gateway's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_headers(secret: str, message_id: str, stamp: int | None = None, body: bytes = BODY) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, message_id, stamp, body), "content-type": "application/json"}


def check_of(*secrets: str) -> StandardWebhookCheck:
    """A check reading ``secrets`` from variables set only while it reads them."""
    names = [f"CORE_TEST_WHSEC_{i}" for i in range(len(secrets))]
    os.environ.update(dict(zip(names, secrets, strict=True)))
    try:
        return StandardWebhookCheck(StandardWebhook([Secret(env=n) for n in names]), "test")
    finally:
        for name in names:
            del os.environ[name]


def test_standard_webhooks_published_vector() -> None:
    check = check_of(WHSEC)
    headers = {b"webhook-id": VECTOR_ID, b"webhook-timestamp": str(VECTOR_TS).encode(),
               b"webhook-signature": VECTOR_SIGNATURE}
    assert check.verify(headers, VECTOR_BODY, now=VECTOR_TS) == VECTOR_ID
    # the vector's "invalid signature" and "partial signature" cases
    for bad in (b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", b"v1,",
                b"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="):
        with pytest.raises(Denied) as refused:
            check_of(WHSEC).verify({**headers, b"webhook-signature": bad}, VECTOR_BODY, now=VECTOR_TS)
        assert refused.value.status == 403
    # several signatures, one valid (the vector's multi-signature case); the secret without prefix
    several = b"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " \
              + VECTOR_SIGNATURE
    bare = check_of(WHSEC.removeprefix("whsec_"))
    assert bare.verify({**headers, b"webhook-signature": several}, VECTOR_BODY, now=VECTOR_TS) == VECTOR_ID
    # just outside the 5-minute tolerance, both ways
    for now in (VECTOR_TS + 301, VECTOR_TS - 301):
        with pytest.raises(Denied, match="more than 300 seconds"):
            check_of(WHSEC).verify(headers, VECTOR_BODY, now=now)


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr"])
def test_unpadded_secrets_are_accepted(secret: str) -> None:
    padded = secret + "=" * (-len(secret) % 4)
    check = check_of("whsec_" + secret)
    headers = webhook_headers(padded, "msg_1", VECTOR_TS, VECTOR_BODY)
    assert check.verify({k.encode(): v.encode() for k, v in headers.items()}, VECTOR_BODY, now=VECTOR_TS) == b"msg_1"


def test_a_secret_that_is_not_whsec_base64_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TEST_BAD_SECRET", "whsec_***not base64***")
    with pytest.raises(PipelineError, match="CORE_TEST_BAD_SECRET|not 'whsec_'") as raised:
        StandardWebhookCheck(StandardWebhook(Secret(env="CORE_TEST_BAD_SECRET")), "source 's', trigger 't'")
    assert "not base64***" not in str(raised.value)


async def test_api_key_matrix(tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TEST_API_KEYS", KEY)
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# rotated out next month\n{OLD_KEY}\n")
    auth = ApiKey([Secret(env="CORE_TEST_API_KEYS"), Secret(file=str(keys_file))])
    source = Source("web", [HttpTrigger("track", "/track", auth=auth)])
    async with opened(tmp_path, [source]) as runtime, serving(runtime) as gateway:
        url = f"{gateway.url}/track"
        missing = await client.post(url, content=BODY)
        assert missing.status_code == 401 and "API key is required" in missing.json()["error"]
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for wrong in ({"authorization": "Bearer nope"}, {"x-api-key": KEY + "x"},
                      {"authorization": "Basic " + base64.b64encode(b"nope:").decode()},
                      {"authorization": "Basic %%%"}):
            refused = await client.post(url, content=BODY, headers=wrong)
            assert refused.status_code == 403, (wrong, refused.text)
            assert KEY not in refused.text and OLD_KEY not in refused.text
        assert await count(runtime) == 0
        for right in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": OLD_KEY}, {}):
            kwargs = {"auth": httpx.BasicAuth(KEY, "")} if not right else {}
            accepted = await client.post(url, content=BODY, headers=right, **kwargs)  # type: ignore[arg-type]
            assert accepted.status_code == 202, (right, accepted.text)
        assert await count(runtime) == 3


async def test_standard_webhook_matrix(tmp_path: Path, client: httpx.AsyncClient,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TEST_WHSEC", f"{WHSEC}\n{WHSEC_NEW}")  # a rotation: both sign for now
    source = Source("hooks", [HttpTrigger("in", "/in", auth=StandardWebhook(Secret(env="CORE_TEST_WHSEC")))])
    async with opened(tmp_path, [source]) as runtime, serving(runtime) as gateway:
        url = f"{gateway.url}/in"
        good = webhook_headers(WHSEC, "msg_1")
        missing = await client.post(url, content=BODY, headers={"webhook-id": "msg_1"})
        assert missing.status_code == 401
        assert missing.json()["error"].endswith("missing header(s) webhook-timestamp, webhook-signature")
        cases = {
            "wrong secret": webhook_headers("whsec_" + base64.b64encode(b"x" * 24).decode(), "msg_1"),
            "expired": webhook_headers(WHSEC, "msg_1", int(time.time()) - 600),
            "from the future": webhook_headers(WHSEC, "msg_1", int(time.time()) + 600),
            "not a timestamp": {**good, "webhook-timestamp": "yesterday"},
            "another id": {**good, "webhook-id": "msg_2"},
        }
        for case, headers in cases.items():
            refused = await client.post(url, content=BODY, headers=headers)
            assert refused.status_code == 403, (case, refused.text)
        tampered = await client.post(url, content=BODY.replace(b"1", b"2"), headers=good)
        assert tampered.status_code == 403 and "no webhook-signature matches" in tampered.json()["error"]
        assert await count(runtime) == 0
        assert (await client.post(url, content=BODY, headers=good)).status_code == 202
        replayed = await client.post(url, content=BODY, headers=good)
        assert replayed.status_code == 409 and "replay" in replayed.json()["error"]
        rotated = await client.post(url, content=BODY, headers=webhook_headers(WHSEC_NEW, "msg_3"))
        assert rotated.status_code == 202, rotated.text
        assert await count(runtime) == 2


async def test_a_webhook_not_stored_can_be_sent_again(tmp_path: Path, client: httpx.AsyncClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed message refused after its signature (bad body) is not remembered: the retry passes."""
    monkeypatch.setenv("CORE_TEST_WHSEC", WHSEC)
    source = Source("hooks", [HttpTrigger("in", "/in", auth=StandardWebhook(Secret(env="CORE_TEST_WHSEC")))])
    async with opened(tmp_path, [source]) as runtime, serving(runtime) as gateway:
        bad = b'{"dta": 1}'
        first = await client.post(f"{gateway.url}/in", content=bad, headers=webhook_headers(WHSEC, "msg_9", body=bad))
        assert first.status_code == 400
        again = await client.post(f"{gateway.url}/in", content=BODY, headers=webhook_headers(WHSEC, "msg_9"))
        assert again.status_code == 202, again.text
        assert await count(runtime) == 1


@pytest.mark.parametrize("algorithm, prefix, encoding, header", [
    ("sha256", "sha256=", "hex", "X-Hub-Signature-256"),    # GitHub
    ("sha1", "sha1=", "hex", "X-Hub-Signature"),             # GitHub's older header
    ("sha256", "", "base64", "X-Shopify-Hmac-Sha256"),       # Shopify
    ("sha512", "", "hex", "X-Signature"),
])
async def test_hmac_matrix(tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
                           algorithm: str, prefix: str, encoding: str, header: str) -> None:
    monkeypatch.setenv("CORE_TEST_HMAC", "new-secret old-secret")
    auth = HmacSignature(Secret(env="CORE_TEST_HMAC"), header=header, algorithm=algorithm,  # type: ignore[arg-type]
                         prefix=prefix, encoding=encoding)  # type: ignore[arg-type]
    source = Source("provider", [HttpTrigger("in", "/in", auth=auth)])

    def signature(secret: str, body: bytes) -> str:
        mac = hmac.new(secret.encode(), body, algorithm).digest()
        return prefix + (mac.hex() if encoding == "hex" else base64.b64encode(mac).decode())

    async with opened(tmp_path, [source]) as runtime, serving(runtime) as gateway:
        url = f"{gateway.url}/in"
        assert (await client.post(url, content=BODY)).status_code == 401
        for wrong in (signature("other", BODY), signature("new-secret", BODY + b" "), "zz" + signature("x", BODY),
                      prefix + "not-encoded!"):
            refused = await client.post(url, content=BODY, headers={header: wrong})
            assert refused.status_code == 403, (wrong, refused.text)
        assert await count(runtime) == 0
        for secret in ("new-secret", "old-secret"):
            accepted = await client.post(url, content=BODY, headers={header: signature(secret, BODY)})
            assert accepted.status_code == 202, accepted.text
        assert await count(runtime) == 2


async def test_a_key_not_set_stops_start_up_naming_the_variable(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORE_TEST_UNSET_KEY", raising=False)
    source = Source("web", [HttpTrigger("track", "/track", auth=ApiKey(Secret(env="CORE_TEST_UNSET_KEY")))])
    async with opened(tmp_path, [source]) as runtime:
        with pytest.raises(PipelineError, match="environment variable CORE_TEST_UNSET_KEY, which is not set"):
            async with serving(runtime):
                pass


def test_auth_types_refuse_bad_declarations() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Secret()
    with pytest.raises(ValueError, match="algorithm 'md5'"):
        HmacSignature(Secret(env="X"), header="x-sig", algorithm="md5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not an ApiKey"):
        HttpTrigger("t", "/t", auth="secret")  # type: ignore[arg-type]


def test_replay_memory_forgets_after_its_window_and_past_its_limit() -> None:
    memory = ReplayMemory(keep=10, limit=3)
    assert memory.reserve(b"a", now=0) and not memory.reserve(b"a", now=9)
    assert memory.reserve(b"a", now=10.5)  # the window passed
    assert memory.reserve(b"b", now=11) and memory.reserve(b"c", now=11)
    assert memory.reserve(b"d", now=11)  # over the limit: the oldest ("a") is forgotten
    assert memory.reserve(b"a", now=11) and not memory.reserve(b"d", now=11)
    memory.release(b"d")
    assert memory.reserve(b"d", now=12)
