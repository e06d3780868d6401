"""A wire-level stand-in for Azure Service Bus, written by us (not Microsoft's), for tests.

It speaks AMQP 1.0 with python-qpid-proton and serves what the unmodified ``azure-servicebus``
SDK puts on the wire when its connection string says ``UseDevelopmentEmulator=true`` (plain
TCP, no TLS): SASL ANONYMOUS or PLAIN, CBS ``put-token`` on ``$cbs`` (every token is accepted:
no SAS validation), queues, topics with subscriptions (``topic/Subscriptions/sub``), peek-lock
with lock tokens (the delivery tag and ``x-opt-lock-token``), the dispositions complete
(accepted), abandon (modified), dead-letter (rejected) and their confirmation, delivery counts
and ``MaxDeliveryCount`` into the ``$DeadLetterQueue`` sub-queue, lock expiry and the
``$management`` operations ``com.microsoft:renew-lock`` and ``com.microsoft:update-disposition``.

Entities need no management API: a topic exists once a sender attaches to it, a subscription
once a receiver attaches to it (``--queue NAME`` declares a queue). On SIGTERM it writes its
entities and messages to ``--state`` and reads them back at start, so a restart keeps them,
as Service Bus does (locks do not survive: locked messages are available again).

    python standin.py --port 5673 [--state FILE] [--lock-duration 30] [--max-delivery-count 10]

The :class:`StandIn` process wrapper at the bottom uses the standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, cast

HOST = "127.0.0.1"
#: What the stand-in prints once it listens.
READY = "stand-in listening"
#: A connection string for the SDK (any key is accepted; none is checked).
KEY_NAME, KEY = "RootManageSharedAccessKey", "c3RhbmQtaW4ta2V5LW5vdC1hLXNlY3JldA=="


def connection_string(port: int, host: str = HOST) -> str:
    """The SDK's connection string for a stand-in on ``host:port`` (plain AMQP)."""
    return (f"Endpoint=sb://{host}:{port};SharedAccessKeyName={KEY_NAME};SharedAccessKey={KEY};"
            "UseDevelopmentEmulator=true")


# -- the broker (needs python-qpid-proton) ------------------------------------------------------

def serve(port: int, state: Path | None, lock_duration: float, max_delivery_count: int,
          queues: list[str]) -> None:  # pragma: no cover - runs in its own process
    from proton import Array, Data, Delivery, Endpoint, Handler, Message, symbol, timestamp
    from proton.reactor import Container

    section_codes = range(0x70, 0x79)
    data_section = 0x75
    #: Sections the SDK puts before the data sections of a batch (the first message's properties).
    _BATCH_HEAD = (0x70, 0x71, 0x72, 0x73, 0x74)

    class Stored:
        __slots__ = ("body", "count", "enqueued", "extra", "seq")

        def __init__(self, body: bytes, seq: int, enqueued: int, count: int = 0,
                     extra: dict[str, str] | None = None) -> None:
            self.body, self.seq, self.enqueued, self.count, self.extra = body, seq, enqueued, count, extra or {}

    class Lock:
        __slots__ = ("delivery", "node", "stored", "token", "until")

        def __init__(self, node: Node, stored: Stored, token: uuid.UUID, delivery: Any) -> None:
            self.node, self.stored, self.token, self.delivery = node, stored, token, delivery
            self.until = time.time() + lock_duration

    class Node:
        """What can be received from: a queue, a subscription, or one's dead-letter sub-queue."""

        def __init__(self, name: str, dead: bool = False) -> None:
            self.name = name
            self.ready: deque[Stored] = deque()
            self.locks: dict[uuid.UUID, Lock] = {}
            self.consumers: list[Any] = []
            self.turn = 0
            self.dead: Node | None = None if dead else Node(name + "/$DeadLetterQueue", dead=True)

    broker_nodes: dict[str, Node] = {}           # lower-case queue or topic/subscriptions/sub
    topics: dict[str, dict[str, Node]] = {}      # lower-case topic -> lower-case sub -> node
    is_queue: set[str] = {q.lower() for q in queues}
    counter = [0]
    stopping = [False]

    def now_ms() -> int:
        return int(time.time() * 1000)

    def next_seq() -> int:
        counter[0] += 1
        return counter[0]

    def entity(address: str) -> str:
        """``amqps://host/a/b`` -> ``a/b``."""
        if "://" in address:
            address = address.split("://", 1)[1].partition("/")[2]
        return address.strip("/")

    def node_for(name: str) -> Node:
        """The node to receive from at ``name``, made if missing."""
        parts = name.split("/")
        dead = len(parts) in (2, 4) and parts[-1].lower() == "$deadletterqueue"
        if dead:
            parts = parts[:-1]
        if len(parts) == 3 and parts[1].lower() == "subscriptions":
            subs = topics.setdefault(parts[0].lower(), {})
            node = subs.get(parts[2].lower())
            if node is None:
                node = subs[parts[2].lower()] = Node("/".join(parts))
                print(f"created subscription {parts[0]}/Subscriptions/{parts[2]}", flush=True)
        else:
            is_queue.add(parts[0].lower())
            node = broker_nodes.setdefault(parts[0].lower(), Node(parts[0]))
        assert node.dead is not None
        return node.dead if dead else node

    def enqueue(name: str, body: bytes) -> None:
        key = name.lower()
        targets = [node_for(name)] if key in is_queue else list(topics.setdefault(key, {}).values())
        stamp = now_ms()
        for node in targets:
            node.ready.append(Stored(body, next_seq(), stamp))
            pump(node)

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
            if code not in section_codes:
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
        bodies = [code for code, _, _ in parts if code == data_section]
        if bodies and all(code == data_section or code in _BATCH_HEAD for code, _, _ in parts):
            inner = [bytes(value) for code, _, value in parts if code == data_section]
            try:
                for body in inner:
                    sections(body)
            except ValueError:
                return [raw]
            return inner
        return [raw]

    def dead_letter(lock_or_stored: Stored, node: Node, reason: str, description: str) -> None:
        target = node.dead
        if target is None:  # a dead-letter queue has none: keep it there
            node.ready.append(lock_or_stored)
            return
        extra = {"DeadLetterReason": reason, "DeadLetterErrorDescription": description}
        target.ready.append(Stored(lock_or_stored.body, lock_or_stored.seq, lock_or_stored.enqueued,
                                   lock_or_stored.count, {**lock_or_stored.extra, **extra}))
        pump(target)

    def returned(lock: Lock, reason: str) -> None:
        """An abandoned or expired lock: count the delivery; past MaxDeliveryCount, dead-letter."""
        stored, node = lock.stored, lock.node
        stored.count += 1
        if max_delivery_count and node.dead is not None and stored.count >= max_delivery_count:
            dead_letter(stored, node, "MaxDeliveryCountExceeded",
                        f"Message could not be consumed after {max_delivery_count} delivery attempts ({reason}).")
        else:
            node.ready.appendleft(stored)
        pump(node)

    def pump(node: Node) -> None:
        """Hand ready messages to consumers with credit, in turn."""
        while node.ready:
            live = [link for link in node.consumers if link.credit > 0]
            if not live:
                return
            link = live[node.turn % len(live)]
            node.turn += 1
            stored = node.ready.popleft()
            message = Message()
            message.decode(stored.body)
            token = uuid.uuid4()
            until = time.time() + lock_duration
            annotations = dict(message.annotations or {})
            annotations.update({
                symbol("x-opt-lock-token"): token,
                symbol("x-opt-sequence-number"): stored.seq,
                symbol("x-opt-enqueued-time"): timestamp(stored.enqueued),
                symbol("x-opt-locked-until"): timestamp(int(until * 1000)),
            })
            message.annotations = annotations
            message.delivery_count = stored.count
            if stored.extra:
                properties: dict[str, Any] = {**(message.properties or {}), **stored.extra}
                message.properties = cast(Any, properties)
            presettled = link.snd_settle_mode == 1  # settled: receive-and-delete
            delivery = link.delivery(token.bytes_le)
            link.send(message.encode())
            link.advance()
            if presettled:
                delivery.settle()
                continue
            lock = Lock(node, stored, token, delivery)
            lock.until = until
            node.locks[token] = lock
            delivery.lock = lock
            if link.drain_mode and link.credit == 0:
                link.drained()

    def settle(lock: Lock, status: str, reason: str = "", description: str = "") -> None:
        node = lock.node
        node.locks.pop(lock.token, None)
        lock.delivery = None
        if status == "completed":
            return
        if status == "suspended":
            dead_letter(lock.stored, node, reason, description)
        elif status == "abandoned":
            returned(lock, "abandoned")
        else:  # deferred: not supported, taken as abandoned without counting
            node.ready.appendleft(lock.stored)
            pump(node)

    def expire() -> None:
        moment = time.time()
        for node in all_nodes():
            for lock in [lk for lk in node.locks.values() if lk.until <= moment]:
                node.locks.pop(lock.token, None)
                if lock.delivery is not None:
                    lock.delivery.lock = None
                    lock.delivery = None
                returned(lock, "lock expired")

    def all_nodes() -> list[Node]:
        nodes = list(broker_nodes.values()) + [n for subs in topics.values() for n in subs.values()]
        return nodes + [n.dead for n in nodes if n.dead is not None]

    def find_lock(token: uuid.UUID) -> Lock | None:
        for node in all_nodes():
            if token in node.locks:
                return node.locks[token]
        return None

    # -- request / response nodes ($cbs, $management) --------------------------------------

    def respond(receiver_link: Any, request: Message, status: int, description: str, body: Any,
                code_key: str, description_key: str, extra: dict[str, Any] | None = None) -> None:
        address = receiver_link.target.address
        connection = receiver_link.connection
        candidates = []
        link = connection.link_head(Endpoint.LOCAL_ACTIVE)
        while link:
            if link.is_sender and link.source.address == address:
                candidates.append(link)
            link = link.next(Endpoint.LOCAL_ACTIVE)
        if not candidates:
            return
        chosen = next((c for c in candidates if c.remote_target.address == request.reply_to), candidates[0])
        response = Message(body=body, correlation_id=request.id,
                           properties={code_key: status, description_key: description, **(extra or {})})
        pending = getattr(chosen, "pending", None)
        if pending is None:
            pending = chosen.pending = deque()
        pending.append(response)
        flush(chosen)

    def flush(link: Any) -> None:
        pending = getattr(link, "pending", None)
        while pending and link.credit > 0:
            message = pending.popleft()
            delivery = link.delivery(str(uuid.uuid4()).encode())
            link.send(message.encode())
            link.advance()
            delivery.settle()

    def elements(value: Any) -> list[Any]:
        """The values of an AMQP array or list (or none)."""
        if value is None:
            return []
        return list(getattr(value, "elements", value))

    def management(link: Any, request: Message) -> None:
        props: dict[Any, Any] = request.properties or {}
        operation = str(props.get("operation", ""))
        body = request.body if isinstance(request.body, dict) else {}
        body = {str(k): v for k, v in body.items()}
        keys = ("statusCode", "statusDescription")
        tokens = [t if isinstance(t, uuid.UUID) else uuid.UUID(bytes_le=bytes(t)) if isinstance(t, bytes)
                  else uuid.UUID(str(t)) for t in elements(body.get("lock-tokens"))]
        if operation == "com.microsoft:renew-lock":
            expirations = []
            for token in tokens:
                lock = find_lock(token)
                if lock is None:
                    respond(link, request, 410, "The lock supplied is invalid. Either the lock expired, or the "
                            "message has already been removed from the queue.", None, *keys,
                            extra={"errorCondition": symbol("com.microsoft:message-lock-lost")})
                    return
                lock.until = time.time() + lock_duration
                expirations.append(timestamp(int(lock.until * 1000)))
            respond(link, request, 200, "OK", {"expirations": Array(0, Data.TIMESTAMP, *expirations)}, *keys)
        elif operation == "com.microsoft:update-disposition":
            status = str(body.get("disposition-status", ""))
            locks = [find_lock(token) for token in tokens]
            if any(lock is None for lock in locks):
                respond(link, request, 410, "The lock supplied is invalid.", None, *keys,
                        extra={"errorCondition": symbol("com.microsoft:message-lock-lost")})
                return
            for lock in locks:
                assert lock is not None
                settle(lock, status, str(body.get("deadletter-reason", "")),
                       str(body.get("deadletter-description", "")))
            respond(link, request, 200, "OK", {}, *keys)
        else:
            respond(link, request, 501, f"operation {operation!r} is not served by the stand-in", None, *keys,
                    extra={"errorCondition": symbol("amqp:not-implemented")})

    # -- the AMQP handler ----------------------------------------------------------------------

    class Broker(Handler):
        def on_connection_init(self, event: Any) -> None:
            event.connection.container = "core-servicebus-standin"

        def on_connection_bound(self, event: Any) -> None:
            sasl = event.transport.sasl()
            sasl.allow_insecure_mechs = True
            sasl.allowed_mechs("ANONYMOUS PLAIN")
            sasl.done(sasl.OK)

        def on_connection_remote_open(self, event: Any) -> None:
            if event.connection.state & Endpoint.LOCAL_UNINIT:
                event.connection.open()

        def on_session_remote_open(self, event: Any) -> None:
            if event.session.state & Endpoint.LOCAL_UNINIT:
                event.session.incoming_capacity = 64 * 1024 * 1024
                event.session.open()

        def on_link_remote_open(self, event: Any) -> None:
            link = event.link
            if not link.state & Endpoint.LOCAL_UNINIT:
                return
            link.max_message_size = 1024 * 1024
            if link.is_sender:  # the client receives from link.remote_source
                address = link.remote_source.address or ""
                link.source.address = address
                link.target.address = link.remote_target.address
                link.snd_settle_mode = link.remote_snd_settle_mode
                link.rcv_settle_mode = link.remote_rcv_settle_mode
                name = entity(address)
                if name == "$cbs" or name.endswith("$management"):
                    link.source.address = name
                    link.node = None
                else:
                    node = node_for(name)
                    link.node = node
                    node.consumers.append(link)
            else:  # the client sends to link.remote_target
                address = link.remote_target.address or ""
                link.target.address = entity(address) if address else address
                link.source.address = link.remote_source.address
                link.rcv_settle_mode = link.remote_rcv_settle_mode
                link.snd_settle_mode = link.remote_snd_settle_mode
            link.open()
            if link.is_receiver:
                link.flow(1000)

        def on_link_flow(self, event: Any) -> None:
            link = event.link
            if link.is_sender:
                flush(link)
                node = getattr(link, "node", None)
                if node is not None:
                    pump(node)
                if link.drain_mode and link.credit > 0:
                    link.drained()

        def on_link_remote_close(self, event: Any) -> None:
            self._unlink(event.link)
            event.link.close()

        def on_link_remote_detach(self, event: Any) -> None:
            self._unlink(event.link)
            event.link.detach()

        def on_session_remote_close(self, event: Any) -> None:
            event.session.close()

        def on_connection_remote_close(self, event: Any) -> None:
            self._unlink_all(event.connection)
            event.connection.close()

        def on_transport_closed(self, event: Any) -> None:
            if event.connection is not None:
                self._unlink_all(event.connection)

        def _unlink_all(self, connection: Any) -> None:
            link = connection.link_head(0)
            while link:
                self._unlink(link)
                link = link.next(0)

        def _unlink(self, link: Any) -> None:
            """A consumer leaves: its locks stay until they expire (as on Service Bus)."""
            node = getattr(link, "node", None)
            if node is not None and link in node.consumers:
                node.consumers.remove(link)

        def on_delivery(self, event: Any) -> None:
            delivery, link = event.delivery, event.link
            if link.is_receiver:
                if delivery.partial or not delivery.readable:
                    return
                raw = bytes(link.recv(delivery.pending))
                link.advance()
                target = link.target.address or ""
                if target == "$cbs":
                    request = Message()
                    request.decode(raw)
                    respond(link, request, 202, "Accepted", None, "status-code", "status-description")
                elif target.endswith("$management"):
                    request = Message()
                    request.decode(raw)
                    management(link, request)
                else:
                    for body in messages_of(raw):
                        enqueue(target, body)
                delivery.update(Delivery.ACCEPTED)
                delivery.settle()
                link.flow(1)
                return
            if not delivery.updated:
                return
            lock = getattr(delivery, "lock", None)
            state = delivery.remote_state
            remote = delivery.remote
            if lock is None:  # its lock expired, or settled already
                if not delivery.settled:
                    delivery.local.condition = None
                    if state == Delivery.ACCEPTED or state == Delivery.MODIFIED or state == Delivery.REJECTED:
                        delivery.local.condition = _condition("com.microsoft:message-lock-lost",
                                                              "The lock supplied is invalid.")
                        delivery.update(Delivery.REJECTED)
                    delivery.settle()
                return
            delivery.lock = None
            if state == Delivery.ACCEPTED:
                settle(lock, "completed")
                delivery.update(Delivery.ACCEPTED)
            elif state == Delivery.REJECTED:
                info = {}
                condition = remote.condition
                if condition is not None and condition.info:
                    info = {str(k): str(v) for k, v in dict(condition.info).items() if v is not None}
                settle(lock, "suspended", info.get("DeadLetterReason", ""),
                       info.get("DeadLetterErrorDescription", condition.description if condition else ""))
                delivery.update(Delivery.REJECTED)
            elif state == Delivery.MODIFIED and remote.undeliverable:
                settle(lock, "deferred")
                delivery.local.failed, delivery.local.undeliverable = remote.failed, True
                delivery.update(Delivery.MODIFIED)
            elif state in (Delivery.MODIFIED, Delivery.RELEASED):
                if state == Delivery.MODIFIED and remote.failed:
                    settle(lock, "abandoned")
                else:  # released: back without counting
                    lock.node.locks.pop(lock.token, None)
                    lock.node.ready.appendleft(lock.stored)
                    pump(lock.node)
                delivery.local.failed = remote.failed
                delivery.update(state)
            else:
                delivery.lock = lock
                return
            if not delivery.settled:
                delivery.settle()

        def on_timer_task(self, event: Any) -> None:
            if stopping[0]:
                event.container.stop()
                return
            expire()
            event.container.schedule(0.1, self)

    def _condition(name: str, description: str) -> Any:
        from proton import Condition
        return Condition(name, description)

    # -- state across restarts ------------------------------------------------------------------

    def save() -> None:
        if state is None:
            return
        def dump(node: Node) -> list[dict[str, Any]]:
            held = sorted([lk.stored for lk in node.locks.values()], key=lambda s: s.seq) + list(node.ready)
            return [{"body": base64.b64encode(s.body).decode(), "seq": s.seq, "enqueued": s.enqueued,
                     "count": s.count, "extra": s.extra} for s in held]
        snapshot = {
            "counter": counter[0], "queues": sorted(is_queue),
            "nodes": {n.name: {"ready": dump(n), "dead": dump(n.dead) if n.dead else []}
                      for n in [*broker_nodes.values(), *(s for subs in topics.values() for s in subs.values())]},
            "topics": sorted(topics),
        }
        partial = state.with_suffix(".tmp")
        partial.write_text(json.dumps(snapshot))
        partial.replace(state)

    def load() -> None:
        if state is None or not state.is_file():
            return
        snapshot = json.loads(state.read_text())
        counter[0] = snapshot["counter"]
        is_queue.update(snapshot["queues"])
        for topic in snapshot["topics"]:
            topics.setdefault(topic, {})
        for name, held in snapshot["nodes"].items():
            node = node_for(name)
            for key, target in (("ready", node), ("dead", node.dead)):
                assert target is not None
                for s in held[key]:
                    target.ready.append(Stored(base64.b64decode(s["body"]), s["seq"], s["enqueued"], s["count"],
                                               s["extra"]))

    load()
    broker = Broker()
    container = Container(broker)
    container.container_id = "core-servicebus-standin"

    def stop(signum: int, frame: Any) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    container.listen(f"{HOST}:{port}")
    container.schedule(0.1, broker)
    print(f"{READY} on {HOST}:{port}", flush=True)
    container.run()
    save()


# -- the process, from tests and scripts (standard library) ------------------------------------

class StandInError(RuntimeError):
    """The stand-in did not start; the message says why."""


def answers(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class StandIn:
    """The stand-in as a process of our own on ``port``: started, stopped, started again with
    what it had (``state``), logging to ``log``."""

    def has_subscription(self, topic: str, subscription: str) -> bool:
        """Whether the stand-in has made (or been started with) that subscription."""
        line = f"created subscription {topic}/Subscriptions/{subscription}\n"
        return self.log.exists() and line.lower() in self.log.read_text(errors="replace").lower()

    def __init__(self, port: int, directory: Path, *, lock_duration: float = 30.0,
                 max_delivery_count: int = 10, python: str = sys.executable) -> None:
        self.port = port
        self.directory = directory
        self.log = directory / "standin.log"
        self.state = directory / "standin.json"
        self.lock_duration = lock_duration
        self.max_delivery_count = max_delivery_count
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until it listens."""
        if answers(self.port):
            raise StandInError(f"port {self.port} of {HOST} is taken: choose another")
        self.directory.mkdir(parents=True, exist_ok=True)
        start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.python, str(Path(__file__).resolve()), "--port", str(self.port), "--state", str(self.state),
                 "--lock-duration", str(self.lock_duration), "--max-delivery-count", str(self.max_delivery_count)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not (READY in self.log.read_text(errors="replace")[start:] and answers(self.port)):
            if self.process.poll() is not None:
                raise StandInError(f"the stand-in exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise StandInError(f"the stand-in did not listen within {timeout:.0f}s; see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (SIGTERM: it saves its state), and wait for the port to close."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 10
        while answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, default=None, help="where to keep entities and messages across restarts")
    parser.add_argument("--lock-duration", type=float, default=30.0, help="seconds a peek-lock lasts (LockDuration)")
    parser.add_argument("--max-delivery-count", type=int, default=10, help="MaxDeliveryCount of every entity")
    parser.add_argument("--queue", action="append", default=[], help="declare a queue (else names are topics)")
    args = parser.parse_args()
    serve(args.port, args.state, args.lock_duration, args.max_delivery_count, args.queue)
    return 0


if __name__ == "__main__":
    sys.exit(main())
