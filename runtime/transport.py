"""Node-to-node messaging over gRPC: one long-lived stream per (sender, receiver), batched.

Everything a process sends to one peer goes through one ``_PeerLink``: a bounded queue drained by one
writer task. Woken by a message, the writer lets ``linger_turns`` loop turns pass (the messages those turns'
requests produce join it), then everything queued leaves as ONE ``Batch`` write (and while a write
is in flight, the next batch fills up), so a message costs a fraction of a unary call. The receiver
hands each envelope to a callback: ``on_message`` for one-way messages (Paxos traffic), ``on_request``
for requests, whose answers flow back on the same stream, correlated by id.

Failure model, as the caller sees it:
- ``send`` never blocks or raises: it returns False when the message was dropped (queue full, peer
  down, fault rule). Paxos-style protocols tolerate loss and retransmit.
- ``call`` raises ``Overloaded`` (queue full or too many requests in flight to that peer),
  ``PeerUnavailable`` (not connected, or the connection broke while the request was outstanding: it may
  or may not have been applied), ``Timeout``, or ``RemoteError`` (the peer's handler failed).
- A broken connection is re-established lazily, on the next message after a backoff that doubles from
  ``reconnect_backoff_min_ms`` to ``reconnect_backoff_max_ms``. During the backoff the peer counts as
  down: calls fail fast instead of waiting for their timeout.
- The fault table (``runtime.faults``) is applied here, by the sender: cut links drop messages (so
  requests time out, as on a real network), slow links deliver them late.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from proto.build import ensure_built
from runtime.config import Limits
from runtime.faults import PASS, FaultWatcher, Verdict
from runtime.logs import get_logger

ensure_built()
from proto.gen import transport_pb2  # noqa: E402

SENDER_METADATA = "ddb-sender"
STREAM_METHOD = "/ddb.Transport/Stream"
log = get_logger("transport")


class TransportError(Exception):
    """Base of the transport's expected failures."""

    def __init__(self, peer: str, detail: str) -> None:
        super().__init__(f"{peer}: {detail}")
        self.peer = peer
        self.detail = detail


class PeerUnavailable(TransportError):
    """Not connected to the peer, or the connection broke with the request outstanding."""


class Timeout(TransportError):
    """No response within the request's timeout (the peer may still apply it)."""


class Overloaded(TransportError):
    """Too much already queued or in flight to (or at) this peer; back off and retry."""


class RemoteError(TransportError):
    """The peer received the request but its handler failed."""


@dataclass(frozen=True, slots=True)
class Message:
    group: str
    kind: int
    payload: bytes


# One-way message handler: (sender node name, message). Runs inline on the event loop: keep it short.
OnMessage = Callable[[str, Message], None]
# Request handler: returns the response payload, directly or as an awaitable.
OnRequest = Callable[[str, Message], "bytes | Awaitable[bytes]"]
# Queued item: (group, kind, id, payload, error).
_Item = tuple[str, int, int, bytes, str]
_OVERLOADED_ERROR = "overloaded: too many requests in flight"


class Dispatcher:
    """Routes envelopes by kind to the component that owns them (Paxos driver, item service, ...).

        dispatch = Dispatcher()
        dispatch.on_one_way(Kind.PAXOS, driver.receive)
        dispatch.on_call(Kind.GET_ITEM, items.get)
        Transport(name, peers, limits, on_message=dispatch.message, on_request=dispatch.request)
    """

    def __init__(self) -> None:
        self._one_way: dict[int, OnMessage] = {}
        self._calls: dict[int, OnRequest] = {}

    def on_one_way(self, kind: int, handler: OnMessage) -> None:
        assert kind not in self._one_way, f"kind {kind} already has a one-way handler"
        self._one_way[kind] = handler

    def on_call(self, kind: int, handler: OnRequest) -> None:
        assert kind not in self._calls, f"kind {kind} already has a request handler"
        self._calls[kind] = handler

    def message(self, sender: str, message: Message) -> None:
        handler = self._one_way.get(message.kind)
        if handler is None:
            _drop_message(sender, message)
        else:
            handler(sender, message)

    def request(self, sender: str, message: Message) -> bytes | Awaitable[bytes]:
        handler = self._calls.get(message.kind)
        if handler is None:
            raise LookupError(f"no request handler for kind {message.kind}")
        return handler(sender, message)


def _drop_message(sender: str, message: Message) -> None:
    log.warning("one-way message with no handler", sender=sender, group=message.group, kind=message.kind)


def _no_requests(sender: str, message: Message) -> bytes:
    raise RuntimeError(f"this process serves no requests (group {message.group!r}, kind {message.kind})")


@dataclass(slots=True)
class LinkStats:
    """Counters for one peer, both directions. Plain integers: read by the metrics collector."""

    sent_messages: int = 0
    sent_batches: int = 0
    sent_bytes: int = 0
    received_messages: int = 0
    received_batches: int = 0
    dropped_by_fault: int = 0
    dropped_queue_full: int = 0
    dropped_peer_down: int = 0
    delayed_by_fault: int = 0
    timeouts: int = 0
    connects: int = 0
    disconnects: int = 0


class _Wakeup:
    """asyncio.Event for one waiting task, without Event's per-wait lookup of the running loop (a getpid
    system call each time in Python 3.11): a stream's writer waits on it once per batch."""

    __slots__ = ("_is_set", "_loop", "_waiter")

    def __init__(self) -> None:
        self._is_set = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._is_set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._is_set = False

    async def wait(self) -> None:
        if self._is_set:
            return
        assert self._waiter is None, "one waiter at a time"
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None


async def _linger(queue: deque[_Item], limits: Limits) -> None:
    """Let a few loop turns pass before a write, so that messages queued by the requests those turns
    receive share it. Cheap (a turn with nothing ready is one epoll call), and a gRPC write costs far more
    than a message in it."""
    for _ in range(limits.linger_turns):
        await asyncio.sleep(0)


def _fill_batch(queue: deque[_Item], limits: Limits) -> tuple[Any, int]:
    """Take up to a batch's worth of items from the queue (at least one)."""
    batch = transport_pb2.Batch()
    add = batch.envelopes.add
    size = 0
    count = 0
    while queue and count < limits.max_batch_envelopes:
        group, kind, ident, payload, error = queue[0]
        if count and size + len(payload) > limits.max_batch_bytes:
            break
        queue.popleft()
        add(group=group, kind=kind, id=ident, payload=payload, error=error)
        size += len(payload)
        count += 1
    return batch, count


class _PeerLink:
    """The outbound stream to one peer, with its queue, writer task and outstanding requests."""

    def __init__(self, transport: Transport, peer: str, address: str) -> None:
        self.transport = transport
        self.peer = peer
        self.address = address
        self.queue: deque[_Item] = deque()
        self.pending: dict[int, tuple[asyncio.Future[bytes], asyncio.TimerHandle]] = {}
        self.stats = transport.stats_for(peer)
        self.connected = False
        self.down_until = 0.0  # loop time before which the peer counts as down
        self.delayed = 0
        self._wakeup = _Wakeup()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._fault_generation = -1
        self._verdict: Verdict = PASS

    # -- the caller's side -----------------------------------------------------------------------------

    def verdict(self) -> Verdict:
        faults = self.transport.faults
        if faults is None:
            return PASS
        generation = faults.refresh()
        if generation != self._fault_generation:
            self._fault_generation = generation
            self._verdict = faults.verdict(self.transport.name, self.peer)
        return self._verdict

    def is_down(self) -> bool:
        return self.down_until > self.transport.loop.time()

    def backlog(self) -> int:
        """Messages held for this peer: queued, or held back by a slow-link rule."""
        return len(self.queue) + self.delayed

    def push(self, item: _Item, delay_ms: int) -> None:
        if delay_ms:
            self.stats.delayed_by_fault += 1
            self.delayed += 1
            self.transport.loop.call_later(delay_ms / 1000.0, self._push_delayed, item)
        else:
            self._push_now(item)

    def _push_delayed(self, item: _Item) -> None:
        self.delayed -= 1
        self._push_now(item)

    def _push_now(self, item: _Item) -> None:
        if self._closed:
            return
        self.queue.append(item)
        if self._task is None:
            self._task = self.transport.loop.create_task(self._run(), name=f"link-{self.peer}")
        self._wakeup.set()

    def expire(self, ident: int) -> None:
        entry = self.pending.pop(ident, None)
        if entry is not None and not entry[0].done():
            self.stats.timeouts += 1
            entry[0].set_exception(Timeout(self.peer, "no response in time"))

    # -- the writer task -------------------------------------------------------------------------------

    async def _run(self) -> None:
        limits = self.transport.limits
        backoff_ms = limits.reconnect_backoff_min_ms
        while not self._closed:
            if not self.queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            channel = grpc.aio.insecure_channel(self.address, options=self.transport.channel_options)
            established = False
            try:
                open_stream = channel.stream_stream(
                    STREAM_METHOD, request_serializer=transport_pb2.Batch.SerializeToString,
                    response_deserializer=transport_pb2.Batch.FromString)
                call = open_stream(metadata=((SENDER_METADATA, self.transport.name),))
                await asyncio.wait_for(call.initial_metadata(), limits.connect_timeout_ms / 1000.0)
                if call.done():
                    raise ConnectionError(f"stream closed at once: {await call.code()}")
                self.connected = True
                established = True
                self.stats.connects += 1
                backoff_ms = limits.reconnect_backoff_min_ms
                log.info("peer connected", peer=self.peer, address=self.address)
                await self._pump(call)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, ConnectionError, TimeoutError,
                    asyncio.InvalidStateError) as exc:
                reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else repr(exc)
                if self.connected:
                    log.info("peer disconnected", peer=self.peer, reason=reason)
            except Exception:
                log.exception("peer link failed", peer=self.peer)
            finally:
                await channel.close(grace=None)
            self._disconnected(backoff_ms, established)
            if self._closed:
                return
            await asyncio.sleep(backoff_ms / 1000.0)
            backoff_ms = min(backoff_ms * 2, limits.reconnect_backoff_max_ms)

    async def _pump(self, call: Any) -> None:
        """Write batches until the stream breaks; a reader task resolves responses meanwhile."""
        limits = self.transport.limits
        reader = asyncio.create_task(self._read(call), name=f"link-read-{self.peer}")
        try:
            while not self._closed and not reader.done():
                if not self.queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                await _linger(self.queue, limits)
                batch, count = _fill_batch(self.queue, limits)
                await call.write(batch)
                self.stats.sent_batches += 1
                self.stats.sent_messages += count
            if reader.done():
                reader.result()  # re-raise what broke the stream
        finally:
            reader.cancel()
            call.cancel()

    async def _read(self, call: Any) -> None:
        try:
            while True:
                batch = await call.read()
                if batch is grpc.aio.EOF:
                    raise ConnectionError("peer closed the stream")
                self.stats.received_batches += 1
                self.stats.received_messages += len(batch.envelopes)
                pending = self.pending
                for env in batch.envelopes:
                    entry = pending.pop(env.id, None)
                    if entry is None:
                        continue  # timed out or cancelled already
                    future, timer = entry
                    timer.cancel()
                    if future.done():
                        continue
                    if env.error:
                        future.set_exception(RemoteError(self.peer, env.error))
                    else:
                        future.set_result(env.payload)
        finally:
            self._wakeup.set()  # let the writer notice the stream is gone

    def _disconnected(self, backoff_ms: int, established: bool) -> None:
        if self.connected:
            self.stats.disconnects += 1
        self.connected = False
        self.down_until = self.transport.loop.time() + backoff_ms / 1000.0
        self.stats.dropped_peer_down += sum(1 for item in self.queue if item[2] == 0)
        self.queue.clear()
        # Only a stream that was up can have carried the requests: if this attempt never connected,
        # nothing was written and the caller may safely send them elsewhere.
        self._fail_pending("connection lost" if established else "cannot connect")

    def _fail_pending(self, detail: str) -> None:
        pending, self.pending = self.pending, {}
        for future, timer in pending.values():
            timer.cancel()
            if not future.done():
                future.set_exception(PeerUnavailable(self.peer, detail))

    async def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self.queue.clear()
        self._fail_pending("transport closed")


class _InboundStream:
    """The server side of one peer's stream: dispatches what arrives and writes responses back."""

    def __init__(self, transport: Transport, sender: str, context: Any) -> None:
        self.transport = transport
        self.sender = sender
        self.context = context
        self.stats = transport.stats_for(sender)
        self.queue: deque[_Item] = deque()
        self.in_flight = 0
        self._wakeup = _Wakeup()
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name=f"inbound-write-{self.sender}")
        transport = self.transport
        try:
            while True:
                batch = await self.context.read()
                if batch is grpc.aio.EOF:
                    return
                self.stats.received_batches += 1
                self.stats.received_messages += len(batch.envelopes)
                for env in batch.envelopes:
                    message = Message(env.group, env.kind, env.payload)
                    if env.id == 0:
                        try:
                            transport.on_message(self.sender, message)
                        except Exception:
                            log.exception("one-way handler failed", sender=self.sender, group=env.group,
                                          kind=env.kind)
                    else:
                        self._request(env.id, message)
        finally:
            writer.cancel()
            for task in list(self._tasks):
                task.cancel()

    def _request(self, ident: int, message: Message) -> None:
        if self.in_flight >= self.transport.limits.max_in_flight_per_peer:
            self.respond(ident, b"", _OVERLOADED_ERROR)
            return
        try:
            result = self.transport.on_request(self.sender, message)
        except Exception as exc:
            self.respond(ident, b"", _describe(exc))
            return
        if isinstance(result, bytes):
            self.respond(ident, result, "")
            return
        self.in_flight += 1
        task = self.transport.loop.create_task(self._finish(ident, result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, ident: int, result: Awaitable[bytes]) -> None:
        try:
            payload = await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.respond(ident, b"", _describe(exc))
        else:
            self.respond(ident, payload, "")
        finally:
            self.in_flight -= 1

    def respond(self, ident: int, payload: bytes, error: str) -> None:
        verdict = self.transport.verdict_to(self.sender)
        if verdict.drop:
            self.stats.dropped_by_fault += 1
            return
        if verdict.delay_ms:
            self.stats.delayed_by_fault += 1
            self.transport.loop.call_later(verdict.delay_ms / 1000.0, self._queue_response,
                                           (("", 0, ident, payload, error)))
        else:
            self._queue_response(("", 0, ident, payload, error))

    def _queue_response(self, item: _Item) -> None:
        self.queue.append(item)
        self._wakeup.set()

    async def _write_loop(self) -> None:
        limits = self.transport.limits
        while True:
            if not self.queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await _linger(self.queue, limits)
            batch, count = _fill_batch(self.queue, limits)
            await self.context.write(batch)
            self.stats.sent_batches += 1
            self.stats.sent_messages += count


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" or type(exc).__name__


class _Servicer:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def stream(self, request_iterator: Any, context: Any) -> None:
        sender = dict(context.invocation_metadata()).get(SENDER_METADATA, "")
        if not sender:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"missing {SENDER_METADATA} metadata")
        await context.send_initial_metadata(((SENDER_METADATA, self.transport.name),))
        await _InboundStream(self.transport, sender, context).serve()


class Transport:
    """One process's messaging endpoint: the server for its peers' streams and its own links to them."""

    def __init__(
        self,
        name: str,
        peers: Mapping[str, str],
        limits: Limits,
        *,
        on_message: OnMessage | None = None,
        on_request: OnRequest | None = None,
        faults: FaultWatcher | None = None,
    ) -> None:
        self.name = name
        self.peers = dict(peers)
        self.limits = limits
        self.on_message: OnMessage = on_message or _drop_message
        self.on_request: OnRequest = on_request or _no_requests
        self.faults = faults
        self.stats: dict[str, LinkStats] = {}
        self._links: dict[str, _PeerLink] = {}
        self._next_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.channel_options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", limits.max_grpc_message_bytes),
            ("grpc.max_receive_message_length", limits.max_grpc_message_bytes),
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.initial_reconnect_backoff_ms", limits.reconnect_backoff_min_ms),
            ("grpc.min_reconnect_backoff_ms", limits.reconnect_backoff_min_ms),
            ("grpc.max_reconnect_backoff_ms", limits.reconnect_backoff_max_ms),
        ]

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def server_options(self) -> list[tuple[str, Any]]:
        """Options for the grpc.aio.Server this transport is added to."""
        return [
            ("grpc.max_send_message_length", self.limits.max_grpc_message_bytes),
            ("grpc.max_receive_message_length", self.limits.max_grpc_message_bytes),
            # Peers ping every 10 s (keepalive_time_ms); allow it, or gRPC answers GOAWAY "too_many_pings"
            # and drops the stream with requests in flight.
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        # Registered by hand (not with the generated *_pb2_grpc helpers) to keep this module typed.
        handler = grpc.stream_stream_rpc_method_handler(
            _Servicer(self).stream, request_deserializer=transport_pb2.Batch.FromString,
            response_serializer=transport_pb2.Batch.SerializeToString)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("ddb.Transport", {"Stream": handler}),))

    def stats_for(self, peer: str) -> LinkStats:
        stats = self.stats.get(peer)
        if stats is None:
            stats = self.stats[peer] = LinkStats()
        return stats

    def verdict_to(self, peer: str) -> Verdict:
        if self.faults is None:
            return PASS
        return self.faults.verdict(self.name, peer)

    def _link(self, peer: str) -> _PeerLink:
        link = self._links.get(peer)
        if link is None:
            address = self.peers.get(peer)
            if address is None:
                raise PeerUnavailable(peer, "not a known peer")
            link = self._links[peer] = _PeerLink(self, peer, address)
        return link

    def send(self, peer: str, group: str, kind: int, payload: bytes) -> bool:
        """Queue a one-way message; False if it was dropped (it may still be lost later).
        Raises PeerUnavailable only for a name that is not a peer at all (a caller's bug)."""
        link = self._link(peer)
        verdict = link.verdict()
        if verdict.drop:
            link.stats.dropped_by_fault += 1
            return False
        if link.is_down():
            link.stats.dropped_peer_down += 1
            return False
        if link.backlog() >= self.limits.peer_queue_limit:
            link.stats.dropped_queue_full += 1
            return False
        link.stats.sent_bytes += len(payload)
        link.push((group, kind, 0, payload, ""), verdict.delay_ms)
        return True

    def request(self, peer: str, group: str, kind: int, payload: bytes,
                timeout_ms: float | None = None) -> asyncio.Future[bytes]:
        """Queue a request now; the future resolves to the response payload or a TransportError."""
        link = self._link(peer)
        if link.is_down():
            raise PeerUnavailable(peer, "peer is down (reconnecting)")
        if link.backlog() >= self.limits.peer_queue_limit or len(link.pending) >= self.limits.max_in_flight_per_peer:
            raise Overloaded(peer, "too many messages queued or requests in flight")
        self._next_id += 1
        ident = self._next_id
        loop = self.loop
        future: asyncio.Future[bytes] = loop.create_future()
        timeout_s = (timeout_ms if timeout_ms is not None else self.limits.request_timeout_ms) / 1000.0
        link.pending[ident] = (future, loop.call_later(timeout_s, link.expire, ident))
        verdict = link.verdict()
        if verdict.drop:
            link.stats.dropped_by_fault += 1  # lost on the way: the caller sees a Timeout
        else:
            link.stats.sent_bytes += len(payload)
            link.push((group, kind, ident, payload, ""), verdict.delay_ms)
        return future

    async def call(self, peer: str, group: str, kind: int, payload: bytes, timeout_ms: float | None = None) -> bytes:
        """Send a request and wait for its response payload."""
        return await self.request(peer, group, kind, payload, timeout_ms)

    def is_connected(self, peer: str) -> bool:
        link = self._links.get(peer)
        return link is not None and link.connected

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links))

    def collect_metrics(self) -> Iterable[Metric]:
        """Prometheus families for Metrics.add_collector: one sample per peer per counter."""
        names = [name for name in LinkStats.__dataclass_fields__]
        families = {name: CounterMetricFamily(f"ddb_transport_{name}", f"transport {name.replace('_', ' ')}",
                                              labels=["peer"]) for name in names}
        connected = GaugeMetricFamily("ddb_transport_connected", "outbound stream up", labels=["peer"])
        for peer, stats in sorted(self.stats.items()):
            for name in names:
                families[name].add_metric([peer], getattr(stats, name))
            connected.add_metric([peer], 1.0 if self.is_connected(peer) else 0.0)
        yield from families.values()
        yield connected
