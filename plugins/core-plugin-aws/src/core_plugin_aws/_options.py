"""The AWS adapter's settings: read from the URL, its query and the ``[options.aws]`` table,
and the SNS and SQS names of core's topics and consumer groups.

A key given in both the URL query and the option table takes the URL's value. The URL names
no host (``aws://?region=us-east-1``). No secret is an option: credentials come from the
standard AWS chain (environment, shared credentials file, SSO, container or instance role),
never from core's configuration; ``profile`` only names which profile of that chain to use.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.brokers import BROKER_OPTIONS, DEAD_LETTER_GROUP, DEAD_LETTER_PREFIX, dotted_topic, is_dotted
from hookspecs import AdapterURL, ConfigError, Option, number, read_options, redacted_url, table

from core_plugin_aws.plugin import SCHEMES

#: What SNS allows in a topic name and SQS in a queue name (besides their lengths).
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")
_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,40}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_ENDPOINT = re.compile(r"https?://[^/?#\s]+/?")
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
_QUEUE_URL = re.compile(r"https?://[^/?#\s]+/\d{12}/[A-Za-z0-9_-]{1,80}")
_PROFILE = re.compile(r"[A-Za-z0-9_.@+=,-]{1,128}")
#: SNS topic names are at most 256 long, SQS queue names at most 80.
_TOPIC_LENGTH, _QUEUE_LENGTH = 256, 80


def _matching(pattern: re.Pattern[str]) -> Any:
    def check(value: Any) -> str:
        text = str(value)
        if text and not pattern.fullmatch(text):
            raise ValueError
        return text

    return check


def _names(value_pattern: re.Pattern[str], alternative: re.Pattern[str]) -> Any:
    """A table of core topic -> a name (``value_pattern``) or an ARN/URL (``alternative``)."""

    def check(value: Any) -> dict[str, str]:
        entries = table(value)
        for topic, name in entries.items():
            if not is_dotted(topic) or not isinstance(name, str):
                raise ValueError
            if not (value_pattern.fullmatch(name) or alternative.fullmatch(name)):
                raise ValueError
        return {topic: str(name) for topic, name in entries.items()}

    return check


#: The AWS adapter has only ``tls_ca`` (botocore's ``verify``): HTTPS to AWS needs no client certificate.
_SHARED = {key: option for key, option in BROKER_OPTIONS.items() if key not in ("tls_cert", "tls_key")}

#: Every option: converter, default, what is allowed, what it does.
OPTIONS: dict[str, Option] = {
    "region": Option(
        _matching(_REGION), "", "an AWS region such as us-east-1 (or empty)",
        "the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)",
    ),
    "endpoint_url": Option(
        _matching(_ENDPOINT), "", "http(s)://host[:port] (or empty)",
        "send SNS and SQS requests there, e.g. a local moto server (default: AWS_ENDPOINT_URL, else AWS)",
    ),
    "profile": Option(
        _matching(_PROFILE), "", "a profile name of the shared AWS config (or empty)",
        "the profile of the standard credential chain to use (default: AWS_PROFILE, else the default chain)",
    ),
    "prefix": Option(
        _matching(_PREFIX), "core", "up to 40 letters, digits, '_' or '-' (or empty)",
        "put before every SNS topic and SQS queue name",
    ),
    "topics": Option(
        _names(_NAME, _TOPIC_ARN), {}, "a table of core topic = SNS topic name or ARN",
        "read and publish these core topics on these SNS topics (an ARN is used as it is, never created)",
    ),
    "queues": Option(
        _names(_NAME, _QUEUE_URL), {}, "a table of core topic = SQS queue name or URL",
        "read these core topics from these existing SQS queues (and publish to them directly), without SNS",
    ),
    "ack_deadline": Option(
        number(int, 1, 43200), 30, "whole seconds from 1 to 43200",
        "the SQS visibility timeout: an unsettled delivery whose member died comes again after this "
        "(a live member extends it)",
    ),
    "max_messages": Option(
        number(int, 1), 1000, "a whole number >= 1", "unsettled messages one member holds at most (flow control)"
    ),
    "wait_seconds": Option(
        number(int, 1, 20), 2, "whole seconds from 1 to 20",
        "how long one ReceiveMessage long poll waits (a leaving member waits for its last poll)",
    ),
    "receivers": Option(
        number(int, 1, 16), 2, "a whole number from 1 to 16", "concurrent ReceiveMessage long polls of one member"
    ),
    "max_threads": Option(
        number(int, 1, 256), 16, "a whole number from 1 to 256",
        "threads running boto3's blocking calls (and as many again for the long polls)",
    ),
    **_SHARED,
    # The redrive policy's maxReceiveCount allows 1 to 1000.
    "max_deliveries": Option(
        number(int, 0, 1000), 10, "a whole number from 0 to 1000 (0: redeliver forever)",
        "deliveries of one message to a group before it is dead-lettered",
    ),
}


def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class AwsOptions:
    """Validated settings of one AWS adapter."""

    region: str
    endpoint_url: str
    profile: str
    prefix: str
    topics: Mapping[str, str]
    queues: Mapping[str, str]
    ack_deadline: int
    max_messages: int
    wait_seconds: int
    receivers: int
    max_threads: int
    group_prefix: str
    max_deliveries: int
    connect_timeout: float
    publish_timeout: float
    reconnect_wait: float
    reconnect_max: float
    tls_ca: str

    @classmethod
    def parse(cls, url: str, given: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AwsOptions:
        """Read ``url`` (``aws://?key=value``) and the option table ``given``."""
        environ = os.environ if environ is None else environ
        parts = AdapterURL.split(url, SCHEMES)
        if parts.user or parts.password or parts.hosts or parts.path.strip("/"):
            raise ConfigError(
                "pubsub URL", "host", redacted_url(url),
                "aws://?region=REGION, with no user, password, host or path: credentials come from "
                "the standard AWS chain, endpoints from the option endpoint_url",
            )
        query: dict[str, Any] = {}
        for key, value in parts.params():
            head, dot, rest = key.partition(".")
            if dot and head in ("topics", "queues"):  # topics.<core topic>=<name>
                query.setdefault(head, dict(given.get(head) or {}))[rest] = value
            else:
                query[key] = value
        values = read_options("aws", {**given, **query}, OPTIONS)
        values["region"] = values["region"] or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", "")
        values["endpoint_url"] = values["endpoint_url"] or environ.get("AWS_ENDPOINT_URL", "")
        values["profile"] = values["profile"] or environ.get("AWS_PROFILE", "")
        return cls(**values)

    def check_topic(self, topic: str) -> str:
        """``topic`` if SNS and SQS can carry it; else a :class:`~hookspecs.PipelineError`."""
        return dotted_topic(topic, "valid", "SNS/SQS name", "no wildcards")

    def topic_name(self, topic: str) -> str:
        """The SNS topic name (or ARN, as configured) of ``topic``: ``<prefix>-<topic>`` with its
        dots as dashes (and a digest when the topic has dashes of its own, to stay unique)."""
        self.check_topic(topic)
        if topic in self.topics:
            return self.topics[topic]
        name = f"{self.prefix}-{topic.replace('.', '-')}" if self.prefix else topic.replace(".", "-")
        if "-" in topic or len(name) > _TOPIC_LENGTH:
            name = f"{name[:_TOPIC_LENGTH - 9]}-{_digest(topic)}"
        return name

    def queue_name(self, topic: str, group: str) -> str:
        """The SQS queue name of ``group`` on ``topic``: readable, and unique per pair."""
        full = self.group_prefix + group
        readable = _NOT_ALLOWED.sub("_", f"{self.prefix}-{full}-{topic.replace('.', '-')}".lstrip("-"))
        return f"{readable[:_QUEUE_LENGTH - 9]}-{_digest(self.prefix, topic, full)}"

    def dead_letter_topic(self, topic: str) -> str:
        """Where the dead letters of ``topic`` go: topic ``dead.<topic>``."""
        return f"{DEAD_LETTER_PREFIX}{topic}"

    def dead_letter_queue(self, topic: str) -> str:
        """The queue of group ``dead-letters`` on ``dead.<topic>``: the redrive target of ``topic``'s queues."""
        return self.queue_name(self.dead_letter_topic(topic), DEAD_LETTER_GROUP)
