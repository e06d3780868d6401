"""The Segment source: one HTTP trigger per path of the Segment tracking API, with the write
key as HTTP Basic user name and Segment's answers.

The write key is checked by the gateway's own :class:`~hookspecs.ApiKey` check (HTTP Basic,
the key as user, constant-time, never logged); ``answer`` turns the gateway's ``202`` into
Segment's ``200 {"success": true}`` and its errors into ``{"success": false, "code",
"message"}``, the shape Segment's SDKs read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hookspecs import ApiKey, Cors, HttpTrigger, Secret, Source

from core_plugin_segment._messages import CALLS, MAX_BATCH_BYTES, MAX_CALL_BYTES, batch, call

#: The ``code`` of a Segment error answer, by status.
CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_encoding", 422: "conflict", 429: "rate_limited", 500: "server_error",
         503: "unavailable"}


def answer(status: int, document: dict[str, Any]) -> tuple[int, Any]:
    """The gateway's answer as Segment's: ``200 {"success": true}`` once stored, else the
    same status with ``{"success": false, "code", "message"}``."""
    if status == 202:
        return 200, {"success": True}
    return status, {"success": False, "code": CODES.get(status, "error"), "message": document.get("error", "")}


class SegmentSource(Source):
    """A source that speaks the Segment HTTP tracking API.

    :param name: the source's name (the events' ``source``).
    :param write_keys: where the accepted write keys are read (a :class:`~hookspecs.Secret`
        or a list of them: several keys during a rotation).
    :param prefix: put before every path (``"/web"`` serves ``/web/v1/batch``), so that two
        Segment sources can share a gateway; an SDK's host is then ``http://gateway/web``.
    :param cors: lets browsers (analytics.js) of other origins call it.
    """

    def __init__(self, name: str = "segment", *, write_keys: Secret | Sequence[Secret], prefix: str = "",
                 cors: Cors | None = None) -> None:
        prefix = prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"SegmentSource {name!r}: prefix {prefix!r} must start with '/'")
        auth = ApiKey(write_keys)
        triggers = [HttpTrigger(kind, f"{prefix}/v1/{kind}", extract=call(kind), auth=auth, cors=cors,
                                max_body_bytes=MAX_CALL_BYTES, answer=answer) for kind in CALLS]
        triggers += [HttpTrigger(kind, f"{prefix}/v1/{kind}", extract=batch, auth=auth, cors=cors,
                                 max_body_bytes=MAX_BATCH_BYTES, answer=answer) for kind in ("batch", "import")]
        super().__init__(name, triggers)
