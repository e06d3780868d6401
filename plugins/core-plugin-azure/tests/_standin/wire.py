"""AMQP 1.0 messages as they cross the wire: the sections of an encoded message, the messages
a transfer carries (the SDK's batches), and a stored message encoded for a peek-lock delivery."""

from __future__ import annotations

import uuid
from typing import Any, cast

from proton import Data, Message, symbol, timestamp

SECTION_CODES = range(0x70, 0x79)
DATA_SECTION = 0x75
#: Sections the SDK puts before the data sections of a batch (the first message's properties).
BATCH_HEAD = (0x70, 0x71, 0x72, 0x73, 0x74)


def sections(raw: bytes) -> list[tuple[int, bytes, Any]]:
    """``(descriptor, encoded section, value)`` of each section of an encoded message."""
    out, pos = [], 0
    while pos < len(raw):
        data = Data()
        try:
            used = data.decode(raw[pos:])
        except Exception as exc:  # proton's DataException: not AMQP
            raise ValueError("not an AMQP message") from exc
        if used <= 0:
            raise ValueError("not an AMQP message")
        data.rewind()
        data.next()
        value = data.get_object()
        descriptor = getattr(value, "descriptor", None)
        code = int(descriptor) if isinstance(descriptor, int) else -1
        if code not in SECTION_CODES:
            raise ValueError("not an AMQP message section")
        content = getattr(value, "value", None)
        if isinstance(content, memoryview):  # a view into the Data object's buffer: copy it now
            content = bytes(content)
        out.append((code, raw[pos:pos + used], content))
        pos += used
    return out


def messages_of(raw: bytes) -> list[bytes]:
    """The messages a transfer carries: the SDK's batches (format 0x80013700) are data
    sections each holding one encoded message; proton does not show the format, so a
    transfer of data sections only, each a whole message, counts as a batch."""
    try:
        parts = sections(raw)
    except ValueError:
        return [raw]
    bodies = [code for code, _, _ in parts if code == DATA_SECTION]
    if bodies and all(code == DATA_SECTION or code in BATCH_HEAD for code, _, _ in parts):
        inner = [bytes(value) for code, _, value in parts if code == DATA_SECTION]
        try:
            for body in inner:
                sections(body)
        except ValueError:
            return [raw]
        return inner
    return [raw]


def locked_message(body: bytes, token: uuid.UUID, seq: int, enqueued_ms: int, until: float, count: int,
                   extra: dict[str, str]) -> bytes:
    """The encoded message ``body`` as Service Bus delivers it: lock token, sequence number,
    enqueued and locked-until times as annotations, its delivery count, and ``extra``
    (the dead-letter reason) among its application properties."""
    message = Message()
    message.decode(body)
    annotations = dict(message.annotations or {})
    annotations.update({
        symbol("x-opt-lock-token"): token,
        symbol("x-opt-sequence-number"): seq,
        symbol("x-opt-enqueued-time"): timestamp(enqueued_ms),
        symbol("x-opt-locked-until"): timestamp(int(until * 1000)),
    })
    message.annotations = annotations
    message.delivery_count = count
    if extra:
        properties: dict[str, Any] = {**(message.properties or {}), **extra}
        message.properties = cast(Any, properties)
    return message.encode()
