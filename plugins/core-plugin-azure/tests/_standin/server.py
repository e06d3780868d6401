"""The AMQP side: a proton container listening on the port, its connections, sessions and
links wired to the :class:`~_standin.broker.Broker` (sender links are its consumers, receiver
links bring messages), the ``$cbs`` and ``$management`` request/response nodes, and
:func:`serve`, which runs it until SIGTERM or SIGINT and then saves the state."""

from __future__ import annotations

import signal
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from proton import Delivery, Endpoint, Handler, Message
from proton.reactor import Container

from _standin import management
from _standin.broker import Broker
from _standin.dispositions import disposed
from _standin.management import Reply
from _standin.wire import messages_of

CONTAINER_ID = "core-servicebus-standin"
#: How often locks are checked for expiry, in seconds.
TICK = 0.1


def entity(address: str) -> str:
    """``amqps://host/a/b`` -> ``a/b``."""
    if "://" in address:
        address = address.split("://", 1)[1].partition("/")[2]
    return address.strip("/")


def is_request_node(name: str) -> bool:
    """Whether ``name`` is a request/response node rather than an entity."""
    return name == "$cbs" or name.endswith("$management")


def respond(receiver_link: Any, request: Message, reply: Reply, code_key: str, description_key: str) -> None:
    """Send ``reply`` to ``request`` on the connection's sender link of the same node (the one
    to its ``reply_to`` if several), queued until that link has credit."""
    address = receiver_link.target.address
    candidates = []
    link = receiver_link.connection.link_head(Endpoint.LOCAL_ACTIVE)
    while link:
        if link.is_sender and link.source.address == address:
            candidates.append(link)
        link = link.next(Endpoint.LOCAL_ACTIVE)
    if not candidates:
        return
    chosen = next((c for c in candidates if c.remote_target.address == request.reply_to), candidates[0])
    response = Message(body=reply.body, correlation_id=request.id,
                       properties={code_key: reply.status, description_key: reply.description, **reply.extra})
    pending = getattr(chosen, "pending", None)
    if pending is None:
        pending = chosen.pending = deque()
    pending.append(response)
    flush(chosen)


def flush(link: Any) -> None:
    """Send the replies queued on ``link`` that its credit allows, presettled."""
    pending = getattr(link, "pending", None)
    while pending and link.credit > 0:
        message = pending.popleft()
        delivery = link.delivery(str(uuid.uuid4()).encode())
        link.send(message.encode())
        link.advance()
        delivery.settle()


class Server(Handler):
    """The proton event handler: opens what the client opens, attaches links to nodes, and
    hands transfers and dispositions to the broker."""

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        self.stopping = False

    def on_connection_init(self, event: Any) -> None:
        event.connection.container = CONTAINER_ID

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
            self._attach_consumer(link)
        else:  # the client sends to link.remote_target
            address = link.remote_target.address or ""
            link.target.address = entity(address) if address else address
            link.source.address = link.remote_source.address
            link.rcv_settle_mode = link.remote_rcv_settle_mode
            link.snd_settle_mode = link.remote_snd_settle_mode
        link.open()
        if link.is_receiver:
            link.flow(1000)

    def _attach_consumer(self, link: Any) -> None:
        """A sender link: to a request node's replies, or a consumer of the node it names."""
        address = link.remote_source.address or ""
        link.source.address = address
        link.target.address = link.remote_target.address
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        name = entity(address)
        if is_request_node(name):
            link.source.address = name
            link.node = None
        else:
            node = self.broker.node_for(name)
            link.node = node
            node.consumers.append(link)

    def on_link_flow(self, event: Any) -> None:
        link = event.link
        if link.is_sender:
            flush(link)
            node = getattr(link, "node", None)
            if node is not None:
                self.broker.pump(node)
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
            self._received(link, raw)
            delivery.update(Delivery.ACCEPTED)
            delivery.settle()
            link.flow(1)
        elif delivery.updated:
            disposed(self.broker, delivery)

    def _received(self, link: Any, raw: bytes) -> None:
        """A transfer from the client: a CBS token (always accepted), a management request, or
        messages for the entity the link targets."""
        target = link.target.address or ""
        if target == "$cbs":
            request = Message()
            request.decode(raw)
            respond(link, request, Reply(202, "Accepted"), "status-code", "status-description")
        elif target.endswith("$management"):
            request = Message()
            request.decode(raw)
            respond(link, request, management.handle(self.broker, request), "statusCode", "statusDescription")
        else:
            for body in messages_of(raw):
                self.broker.enqueue(target, body)

    def on_timer_task(self, event: Any) -> None:
        if self.stopping:
            event.container.stop()
            return
        self.broker.expire()
        event.container.schedule(TICK, self)


def serve(port: int, state: Path | None, lock_duration: float, max_delivery_count: int, queues: list[str],
          host: str, ready: str) -> None:  # pragma: no cover - runs in its own process
    """Serve on ``host:port`` (printing ``ready`` once listening) until SIGTERM or SIGINT, with
    the entities and messages of ``state`` (if any), written back there on the way out."""
    broker = Broker(lock_duration, max_delivery_count, queues)
    if state is not None:
        broker.load(state)
    server = Server(broker)
    container = Container(server)
    container.container_id = CONTAINER_ID

    def stop(signum: int, frame: Any) -> None:
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    container.listen(f"{host}:{port}")
    container.schedule(TICK, server)
    print(f"{ready} on {host}:{port}", flush=True)
    container.run()
    if state is not None:
        broker.save(state)
