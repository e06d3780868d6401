"""What boto3 raises, sorted: "AWS cannot be reached" (try later), AWS's own "later"
(throttled, a fault of its own), and "gone" (a topic or queue that no longer exists)."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from hookspecs import PubSubUnavailable

#: What boto3 raises when AWS cannot be reached or did not answer in time: the adapter is down.
CONNECTION: tuple[type[BaseException], ...] = (
    EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError,
)
#: What means "try later", never a bug (AWS's own 5xx and throttling become PubSubUnavailable).
UNAVAILABLE: tuple[type[BaseException], ...] = (*CONNECTION, NoCredentialsError, TimeoutError)
#: What a call of a member may meet: the above, or a refusal (a queue gone, a receipt expired).
NOT_DONE: tuple[type[BaseException], ...] = (ClientError, PubSubUnavailable, *UNAVAILABLE)
#: Error codes of AWS that say "later" rather than "wrong".
_TRANSIENT = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "TooManyRequestsException",
    "ServiceUnavailable", "InternalError", "InternalFailure", "KMSThrottling", "RequestTimeout",
})
#: Codes of a topic or a queue that is gone.
TOPIC_GONE = frozenset({"NotFound", "NotFoundException"})
QUEUE_GONE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def code(exc: BaseException) -> str:
    """The AWS error code of ``exc`` (``""`` if it is no :class:`ClientError`)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def gone(exc: BaseException) -> bool:
    """Whether ``exc`` says a topic or a queue does not exist."""
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    return bool({str(error.get("Code", "")), str(error.get("QueryErrorCode", ""))} & (TOPIC_GONE | QUEUE_GONE))


def transient(exc: ClientError) -> bool:
    """Whether AWS's answer means "try later" (throttled, or a fault of its own)."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code(exc) in _TRANSIENT or status >= 500
