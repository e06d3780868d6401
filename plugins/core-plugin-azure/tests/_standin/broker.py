"""The broker's state: queues, topics and their subscriptions, the messages each holds, the
peek-locks taken on them and the sequence numbers; what settling, abandoning or a lock's expiry
does to a message (delivery counts, ``MaxDeliveryCount`` into the ``$DeadLetterQueue``
sub-queue); and the state file that keeps entities and messages across a restart."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from _standin.wire import locked_message


class Stored:
    """A message as the broker keeps it: its encoded AMQP body, sequence number, enqueued time
    (ms), delivery count, and the properties added on dead-lettering."""

    __slots__ = ("body", "count", "enqueued", "extra", "seq")

    def __init__(self, body: bytes, seq: int, enqueued: int, count: int = 0,
                 extra: dict[str, str] | None = None) -> None:
        self.body, self.seq, self.enqueued, self.count, self.extra = body, seq, enqueued, count, extra or {}


class Lock:
    """A peek-lock on a delivered message, until ``until`` (epoch seconds); ``delivery`` is the
    AMQP delivery it went out on, while that can still settle it."""

    __slots__ = ("delivery", "node", "stored", "token", "until")

    def __init__(self, node: Node, stored: Stored, token: uuid.UUID, delivery: Any, until: float) -> None:
        self.node, self.stored, self.token, self.delivery, self.until = node, stored, token, delivery, until


class Node:
    """What can be received from: a queue, a subscription, or one's dead-letter sub-queue."""

    def __init__(self, name: str, dead: bool = False) -> None:
        self.name = name
        self.ready: deque[Stored] = deque()
        self.locks: dict[uuid.UUID, Lock] = {}
        self.consumers: list[Any] = []  # the AMQP sender links of its receivers
        self.turn = 0
        self.dead: Node | None = None if dead else Node(name + "/$DeadLetterQueue", dead=True)


class Broker:
    """Entities, messages and locks, with the Service Bus rules of what happens to a message."""

    def __init__(self, lock_duration: float, max_delivery_count: int, queues: list[str]) -> None:
        self.lock_duration = lock_duration
        self.max_delivery_count = max_delivery_count
        self.queues: dict[str, Node] = {}  # lower-case queue -> node
        self.topics: dict[str, dict[str, Node]] = {}  # lower-case topic -> lower-case sub -> node
        self.is_queue: set[str] = {q.lower() for q in queues}
        self.counter = 0

    def node_for(self, name: str) -> Node:
        """The node to receive from at ``name`` (``queue``, ``topic/Subscriptions/sub``, either
        with ``/$DeadLetterQueue``), made if missing."""
        parts = name.split("/")
        dead = len(parts) in (2, 4) and parts[-1].lower() == "$deadletterqueue"
        if dead:
            parts = parts[:-1]
        if len(parts) == 3 and parts[1].lower() == "subscriptions":
            subs = self.topics.setdefault(parts[0].lower(), {})
            node = subs.get(parts[2].lower())
            if node is None:
                node = subs[parts[2].lower()] = Node("/".join(parts))
                print(f"created subscription {parts[0]}/Subscriptions/{parts[2]}", flush=True)
        else:
            self.is_queue.add(parts[0].lower())
            node = self.queues.setdefault(parts[0].lower(), Node(parts[0]))
        assert node.dead is not None
        return node.dead if dead else node

    def enqueue(self, name: str, body: bytes) -> None:
        """Store a message sent to the queue or topic ``name`` (a topic: in each subscription)."""
        key = name.lower()
        targets = [self.node_for(name)] if key in self.is_queue else list(self.topics.setdefault(key, {}).values())
        stamp = int(time.time() * 1000)
        for node in targets:
            self.counter += 1
            node.ready.append(Stored(body, self.counter, stamp))
            self.pump(node)

    def pump(self, node: Node) -> None:
        """Hand ready messages to consumers with credit, in turn, each under a new lock (none
        on a link whose receiver settles first: receive-and-delete)."""
        while node.ready:
            live = [link for link in node.consumers if link.credit > 0]
            if not live:
                return
            link = live[node.turn % len(live)]
            node.turn += 1
            stored = node.ready.popleft()
            token = uuid.uuid4()
            until = time.time() + self.lock_duration
            encoded = locked_message(stored.body, token, stored.seq, stored.enqueued, until, stored.count,
                                     stored.extra)
            presettled = link.snd_settle_mode == 1  # settled: receive-and-delete
            delivery = link.delivery(token.bytes_le)
            link.send(encoded)
            link.advance()
            if presettled:
                delivery.settle()
                continue
            lock = Lock(node, stored, token, delivery, until)
            node.locks[token] = lock
            delivery.lock = lock
            if link.drain_mode and link.credit == 0:
                link.drained()

    def settle(self, lock: Lock, status: str, reason: str = "", description: str = "") -> None:
        """End ``lock`` with a Service Bus disposition status: ``completed`` removes the message,
        ``suspended`` dead-letters it, ``abandoned`` returns it counted; any other (deferral is
        not supported) returns it without counting."""
        self._unlock(lock)
        if status == "suspended":
            self._dead_letter(lock.stored, lock.node, reason, description)
        elif status == "abandoned":
            self._returned(lock, "abandoned")
        elif status != "completed":
            self._put_back(lock.node, lock.stored)

    def release(self, lock: Lock) -> None:
        """End ``lock`` of a released delivery: the message is first in line again, uncounted."""
        self._unlock(lock)
        self._put_back(lock.node, lock.stored)

    def renew(self, lock: Lock) -> float:
        """Extend ``lock`` by the lock duration from now; the new expiry (epoch seconds)."""
        lock.until = time.time() + self.lock_duration
        return lock.until

    def expire(self) -> None:
        """Return the messages of expired locks (counted, as an abandon) and forget their
        deliveries, which can no longer settle them."""
        moment = time.time()
        for node in self._nodes():
            for lock in [lk for lk in node.locks.values() if lk.until <= moment]:
                if lock.delivery is not None:
                    lock.delivery.lock = None
                self._unlock(lock)
                self._returned(lock, "lock expired")

    def find_lock(self, token: uuid.UUID) -> Lock | None:
        """The live lock of that token, if any."""
        for node in self._nodes():
            if token in node.locks:
                return node.locks[token]
        return None

    def save(self, path: Path) -> None:
        """Write entities and messages to ``path`` (atomically); locked messages as ready ones."""

        def dump(node: Node) -> list[dict[str, Any]]:
            held = sorted([lk.stored for lk in node.locks.values()], key=lambda s: s.seq) + list(node.ready)
            return [{"body": base64.b64encode(s.body).decode(), "seq": s.seq, "enqueued": s.enqueued,
                     "count": s.count, "extra": s.extra} for s in held]

        snapshot = {
            "counter": self.counter, "queues": sorted(self.is_queue),
            "nodes": {n.name: {"ready": dump(n), "dead": dump(n.dead) if n.dead else []} for n in self._entities()},
            "topics": sorted(self.topics),
        }
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(snapshot))
        partial.replace(path)

    def load(self, path: Path) -> None:
        """Read back what :meth:`save` wrote to ``path``, if it exists."""
        if not path.is_file():
            return
        snapshot = json.loads(path.read_text())
        self.counter = snapshot["counter"]
        self.is_queue.update(snapshot["queues"])
        for topic in snapshot["topics"]:
            self.topics.setdefault(topic, {})
        for name, held in snapshot["nodes"].items():
            node = self.node_for(name)
            for key, target in (("ready", node), ("dead", node.dead)):
                assert target is not None
                for s in held[key]:
                    target.ready.append(Stored(base64.b64decode(s["body"]), s["seq"], s["enqueued"], s["count"],
                                               s["extra"]))

    def _entities(self) -> list[Node]:
        """The queues and subscriptions (not their dead-letter sub-queues)."""
        return [*self.queues.values(), *(n for subs in self.topics.values() for n in subs.values())]

    def _nodes(self) -> list[Node]:
        """Every node, dead-letter sub-queues included."""
        nodes = self._entities()
        return nodes + [n.dead for n in nodes if n.dead is not None]

    def _unlock(self, lock: Lock) -> None:
        lock.node.locks.pop(lock.token, None)
        lock.delivery = None

    def _put_back(self, node: Node, stored: Stored) -> None:
        node.ready.appendleft(stored)
        self.pump(node)

    def _returned(self, lock: Lock, reason: str) -> None:
        """An abandoned or expired lock: count the delivery; past MaxDeliveryCount, dead-letter."""
        stored, node = lock.stored, lock.node
        stored.count += 1
        if self.max_delivery_count and node.dead is not None and stored.count >= self.max_delivery_count:
            self._dead_letter(stored, node, "MaxDeliveryCountExceeded", "Message could not be consumed after "
                              f"{self.max_delivery_count} delivery attempts ({reason}).")
        else:
            node.ready.appendleft(stored)
        self.pump(node)

    def _dead_letter(self, stored: Stored, node: Node, reason: str, description: str) -> None:
        """Move ``stored`` to the dead-letter sub-queue of ``node`` with the reason as properties
        (a dead-letter sub-queue has none: it stays there, last in line)."""
        target = node.dead
        if target is None:
            node.ready.append(stored)
            return
        extra = {"DeadLetterReason": reason, "DeadLetterErrorDescription": description}
        target.ready.append(Stored(stored.body, stored.seq, stored.enqueued, stored.count, {**stored.extra, **extra}))
        self.pump(target)
