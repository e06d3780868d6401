"""What a receiver's disposition of a peek-locked delivery does, and the outcome confirmed back
to it (the SDK awaits that confirmation): accepted completes, rejected dead-letters, modified
abandons (or defers, or returns uncounted), released returns uncounted; a delivery whose lock
is gone is refused with ``message-lock-lost``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proton import Condition, Delivery

from _standin.broker import Broker, Lock
from _standin.management import LOCK_LOST


def _accepted(broker: Broker, lock: Lock, delivery: Any) -> None:
    broker.settle(lock, "completed")
    delivery.update(Delivery.ACCEPTED)


def _rejected(broker: Broker, lock: Lock, delivery: Any) -> None:
    """Dead-letter, with the reason and description the SDK puts in the error condition's info."""
    condition = delivery.remote.condition
    info = {}
    if condition is not None and condition.info:
        info = {str(k): str(v) for k, v in dict(condition.info).items() if v is not None}
    broker.settle(lock, "suspended", info.get("DeadLetterReason", ""),
                  info.get("DeadLetterErrorDescription", condition.description if condition else ""))
    delivery.update(Delivery.REJECTED)


def _modified(broker: Broker, lock: Lock, delivery: Any) -> None:
    """Undeliverable: a deferral; delivery failed: an abandon; neither: back uncounted."""
    remote = delivery.remote
    if remote.undeliverable:
        broker.settle(lock, "deferred")
        delivery.local.failed, delivery.local.undeliverable = remote.failed, True
    else:
        if remote.failed:
            broker.settle(lock, "abandoned")
        else:
            broker.release(lock)
        delivery.local.failed = remote.failed
    delivery.update(Delivery.MODIFIED)


def _released(broker: Broker, lock: Lock, delivery: Any) -> None:
    broker.release(lock)
    delivery.local.failed = delivery.remote.failed
    delivery.update(Delivery.RELEASED)


#: The terminal outcomes a receiver may send, by remote state.
OUTCOMES: dict[Any, Callable[[Broker, Lock, Any], None]] = {
    Delivery.ACCEPTED: _accepted,
    Delivery.REJECTED: _rejected,
    Delivery.MODIFIED: _modified,
    Delivery.RELEASED: _released,
}


def _lock_gone(delivery: Any) -> None:
    """Settle a delivery whose lock expired or was settled already, refusing any outcome."""
    if delivery.settled:
        return
    delivery.local.condition = None
    if delivery.remote_state in (Delivery.ACCEPTED, Delivery.MODIFIED, Delivery.REJECTED):
        delivery.local.condition = Condition(LOCK_LOST, "The lock supplied is invalid.")
        delivery.update(Delivery.REJECTED)
    delivery.settle()


def disposed(broker: Broker, delivery: Any) -> None:
    """Apply the receiver's updated disposition of ``delivery`` (a non-terminal one waits)."""
    lock = getattr(delivery, "lock", None)
    if lock is None:
        _lock_gone(delivery)
        return
    outcome = OUTCOMES.get(delivery.remote_state)
    if outcome is None:
        return
    delivery.lock = None
    outcome(broker, lock, delivery)
    if not delivery.settled:
        delivery.settle()
