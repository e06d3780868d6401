"""A :class:`~hookspecs.Message` as an SNS/SQS message and back.

SNS and SQS carry a body of Unicode text (no NUL and a few other code points, never empty for
SNS) and at most 10 message attributes, each a non-empty string under a restricted name. So:

- a body that is such text travels as it is (another system reading the queue sees it as
  published); any other body travels base64-encoded, with attribute ``Core-Body`` = ``base64``
  (an empty body: ``Core-Body`` = ``empty``);
- the key travels in attribute ``Core-Key`` (an empty key as ``Core-Key-Empty`` = ``true``);
- attributes that fit (valid names, non-empty values, 10 at most with core's own) travel as
  String message attributes; otherwise all of them travel as one attribute ``Core-Attributes``
  holding a JSON object.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from core.brokers import KEY_HEADER
from hookspecs import Message

BODY, PACKED, EMPTY_KEY = "Core-Body", "Core-Attributes", "Core-Key-Empty"
#: Most message attributes SNS and SQS take on one message.
MOST_ATTRIBUTES = 10
#: What SQS accepts in a body or a String attribute (its XML character range).
_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_ATTRIBUTE = re.compile(r"(?!\.)(?!.*\.\.)[A-Za-z0-9_.-]{1,256}(?<!\.)")
_RESERVED = ("aws.", "amazon.")
_OWN = frozenset({BODY, PACKED, EMPTY_KEY, KEY_HEADER})


def _fits(name: str, value: str) -> bool:
    return (
        bool(_ATTRIBUTE.fullmatch(name)) and not name.lower().startswith(_RESERVED) and name not in _OWN
        and bool(value) and bool(_TEXT.fullmatch(value))
    )


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def encode(message: Message) -> tuple[str, dict[str, dict[str, str]]]:
    """The body and the message attributes (boto3's shape) that carry ``message``."""
    attributes: dict[str, dict[str, str]] = {}
    try:
        body = message.body.decode()
    except UnicodeDecodeError:
        body = ""
    if not message.body:
        body, attributes[BODY] = "-", _string("empty")
    elif not body or not _TEXT.fullmatch(body):
        body, attributes[BODY] = base64.b64encode(message.body).decode(), _string("base64")
    if message.key is not None:
        if message.key and _TEXT.fullmatch(message.key):
            attributes[KEY_HEADER] = _string(message.key)
        else:  # SNS takes no empty attribute value
            attributes[EMPTY_KEY] = _string("true")
    given = dict(message.attributes)
    if given and (
        len(given) + len(attributes) > MOST_ATTRIBUTES or not all(_fits(k, v) for k, v in given.items())
    ):
        attributes[PACKED] = _string(json.dumps(given, ensure_ascii=True, separators=(",", ":")))
    else:
        attributes.update((name, _string(value)) for name, value in given.items())
    return body, attributes


def decode(body: str, attributes: Mapping[str, Any]) -> Message:
    """The message that :func:`encode` made ``body`` and ``attributes`` of; a message another
    system sent keeps its body's text (UTF-8) and its String attributes."""
    values = {
        name: str(value.get("StringValue", "")) for name, value in attributes.items()
        if isinstance(value, Mapping) and "StringValue" in value
    }
    encoding = values.pop(BODY, "")
    raw = body.encode()
    if encoding == "base64":
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            pass
    elif encoding == "empty":
        raw = b""
    key = values.pop(KEY_HEADER, None)
    if values.pop(EMPTY_KEY, "") == "true":
        key = ""
    packed = values.pop(PACKED, None)
    if packed is not None:
        try:
            unpacked = json.loads(packed)
        except ValueError:
            unpacked = None
        if isinstance(unpacked, dict):
            values.update((str(k), str(v)) for k, v in unpacked.items())
        else:
            values[PACKED] = packed
    return Message(raw, values, key)


def size(body: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    """What SNS and SQS count of a message against their 256 KiB limit."""
    return len(body.encode()) + sum(
        len(name.encode()) + len(v["DataType"]) + len(v["StringValue"].encode()) for name, v in attributes.items()
    )
