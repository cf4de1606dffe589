"""The transport between two in-process endpoints over real gRPC on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc.aio
import pytest

from runtime.config import Limits
from runtime.faults import FaultRule, FaultWatcher, RuleKind
from runtime.transport import (
    Dispatcher,
    Message,
    Overloaded,
    PeerUnavailable,
    RemoteError,
    Timeout,
    Transport,
)

pytestmark = pytest.mark.timeout(60)
FAST = Limits(reconnect_backoff_min_ms=20, reconnect_backoff_max_ms=100, connect_timeout_ms=500,
              request_timeout_ms=2000)
AZS: dict[str, str | None] = {"sn-a1": "a", "sn-b1": "b"}


@dataclass
class Endpoint:
    transport: Transport
    faults: FaultWatcher
    received: list[tuple[str, Message]] = field(default_factory=list)
    server: grpc.aio.Server | None = None
    port: int = 0

    async def start(self, port: int = 0) -> int:
        server = grpc.aio.server(options=self.transport.server_options())
        self.transport.add_to_server(server)
        self.port = server.add_insecure_port(f"127.0.0.1:{port}")
        assert self.port, f"could not bind 127.0.0.1:{port}"
        await server.start()
        self.server = server
        return self.port

    async def stop_server(self) -> None:
        assert self.server is not None
        await self.server.stop(grace=None)
        self.server = None


def make(name: str, peers: dict[str, str], limits: Limits = FAST,
         on_request: Callable[[str, Message], bytes | Awaitable[bytes]] | None = None) -> Endpoint:
    faults = FaultWatcher(None, AZS)
    received: list[tuple[str, Message]] = []
    transport = Transport(name, peers, limits, faults=faults,
                          on_message=lambda sender, message: received.append((sender, message)),
                          on_request=on_request)
    return Endpoint(transport, faults, received)


async def echo(sender: str, message: Message) -> bytes:
    if message.kind == 99:
        raise ValueError("no such thing")
    if message.kind == 7:
        await asyncio.sleep(0.5)
    return sender.encode() + b":" + message.payload


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Endpoint, Endpoint]]:
    peers: dict[str, str] = {}
    a = make("sn-a1", peers)
    b = make("sn-b1", peers, on_request=echo)
    peers["sn-b1"] = f"127.0.0.1:{await b.start()}"
    peers["sn-a1"] = f"127.0.0.1:{await a.start()}"
    a.transport.peers.update(peers)
    b.transport.peers.update(peers)
    yield a, b
    await a.transport.close()
    await b.transport.close()
    for endpoint in (a, b):
        if endpoint.server is not None:
            await endpoint.stop_server()


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_request_and_response(pair: tuple[Endpoint, Endpoint]) -> None:
    a, _b = pair
    assert await a.transport.call("sn-b1", "p1", 1, b"hello") == b"sn-a1:hello"
    replies = await asyncio.gather(*(a.transport.call("sn-b1", "p1", 1, str(i).encode()) for i in range(200)))
    assert replies == [f"sn-a1:{i}".encode() for i in range(200)]


async def test_sync_handler_and_remote_errors(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    b.transport.on_request = lambda sender, m: b"sync " + m.payload
    assert await a.transport.call("sn-b1", "g", 1, b"x") == b"sync x"
    b.transport.on_request = echo
    with pytest.raises(RemoteError, match="ValueError: no such thing"):
        await a.transport.call("sn-b1", "g", 99, b"")


async def test_many_sends_in_one_turn_become_one_batch(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    await a.transport.call("sn-b1", "g", 1, b"connect first")
    inbound = b.transport.stats_for("sn-a1")
    batches_before = inbound.received_batches
    for i in range(300):
        assert a.transport.send("sn-b1", f"p{i % 7}", 3, i.to_bytes(2, "big"))
    await wait_for(lambda: len(b.received) == 300)
    assert inbound.received_batches == batches_before + 1
    assert [int.from_bytes(m.payload, "big") for _, m in b.received] == list(range(300)), "order kept"
    assert {sender for sender, _ in b.received} == {"sn-a1"}
    assert b.received[8][1] == Message("p1", 3, (8).to_bytes(2, "big"))


async def test_batches_respect_the_size_limits(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    a.transport.limits = Limits(max_batch_envelopes=10, max_batch_bytes=1000, connect_timeout_ms=500)
    await a.transport.call("sn-b1", "g", 1, b"connect first")
    inbound = b.transport.stats_for("sn-a1")
    before = inbound.received_batches
    for _ in range(25):
        a.transport.send("sn-b1", "g", 1, b"x")
    await wait_for(lambda: len(b.received) == 25)
    assert inbound.received_batches - before == 3
    for _ in range(4):
        a.transport.send("sn-b1", "g", 1, b"y" * 600)
    await wait_for(lambda: len(b.received) == 29)
    assert inbound.received_batches - before == 3 + 4


async def test_timeout_and_unknown_peer(pair: tuple[Endpoint, Endpoint]) -> None:
    a, _b = pair
    with pytest.raises(Timeout):
        await a.transport.call("sn-b1", "g", 7, b"", timeout_ms=100)
    with pytest.raises(PeerUnavailable, match="not a known peer"):
        await a.transport.call("sn-z9", "g", 1, b"")


async def test_a_dead_peer_fails_fast_and_reconnects_after_restart(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    assert await a.transport.call("sn-b1", "g", 1, b"1") == b"sn-a1:1"
    port = b.port
    await b.stop_server()
    started = time.monotonic()
    with pytest.raises(PeerUnavailable):
        await a.transport.call("sn-b1", "g", 1, b"2", timeout_ms=5000)
    assert time.monotonic() - started < 2.0, "no waiting for the timeout when the peer is gone"
    with pytest.raises(PeerUnavailable):  # still down: fails at once, during the backoff or the retry
        await a.transport.call("sn-b1", "g", 1, b"3", timeout_ms=5000)
    assert not a.transport.is_connected("sn-b1")
    await b.start(port)
    deadline = time.monotonic() + 5
    while True:
        try:
            assert await a.transport.call("sn-b1", "g", 1, b"4") == b"sn-a1:4"
            break
        except PeerUnavailable:
            assert time.monotonic() < deadline, "did not reconnect"
            await asyncio.sleep(0.02)
    assert a.transport.stats_for("sn-b1").connects == 2


async def test_a_partition_rule_drops_traffic_until_healed(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    await a.transport.call("sn-b1", "g", 1, b"ok")
    a.faults.set_rules([FaultRule(RuleKind.DROP, "az-a", "az-b")])
    assert not a.transport.send("sn-b1", "g", 1, b"lost")
    with pytest.raises(Timeout):
        await a.transport.call("sn-b1", "g", 1, b"lost", timeout_ms=200)
    a.faults.set_rules([])
    assert a.transport.send("sn-b1", "g", 1, b"arrives")
    await wait_for(lambda: [m.payload for _, m in b.received] == [b"arrives"])


async def test_a_one_way_cut_at_the_responder_loses_only_responses(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    b.faults.set_rules([FaultRule(RuleKind.DROP, "sn-b1", "sn-a1", oneway=True)])
    assert a.transport.send("sn-b1", "g", 1, b"a to b still flows")
    await wait_for(lambda: len(b.received) == 1)
    with pytest.raises(Timeout):
        await a.transport.call("sn-b1", "g", 1, b"answer is lost", timeout_ms=300)
    assert b.transport.stats_for("sn-a1").dropped_by_fault == 1


async def test_a_slow_rule_delays_traffic(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    await a.transport.call("sn-b1", "g", 1, b"warm")
    a.faults.set_rules([FaultRule(RuleKind.DELAY, "sn-a1", "sn-b1", oneway=True, delay_ms=150)])
    b.faults.set_rules([FaultRule(RuleKind.DELAY, "sn-b1", "sn-a1", oneway=True, delay_ms=100)])
    started = time.monotonic()
    assert await a.transport.call("sn-b1", "g", 1, b"slow") == b"sn-a1:slow"
    assert time.monotonic() - started >= 0.25
    a.faults.set_rules([])
    b.faults.set_rules([])
    started = time.monotonic()
    await a.transport.call("sn-b1", "g", 1, b"fast")
    assert time.monotonic() - started < 0.25


async def test_bounded_queue_drops_one_way_and_refuses_requests(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    a.transport.limits = Limits(peer_queue_limit=5, max_in_flight_per_peer=3, connect_timeout_ms=500)
    results = [a.transport.send("sn-b1", "g", 1, b"x") for _ in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert a.transport.stats_for("sn-b1").dropped_queue_full == 3
    with pytest.raises(Overloaded):
        a.transport.request("sn-b1", "g", 1, b"")
    await wait_for(lambda: len(b.received) == 5)
    futures = [a.transport.request("sn-b1", "g", 7, b"") for _ in range(3)]
    with pytest.raises(Overloaded):
        a.transport.request("sn-b1", "g", 1, b"")
    await asyncio.gather(*futures)


async def test_messages_held_by_a_slow_link_count_against_the_queue_bound(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    a.transport.limits = Limits(peer_queue_limit=5, connect_timeout_ms=500)
    a.faults.set_rules([FaultRule(RuleKind.DELAY, "sn-a1", "sn-b1", delay_ms=100)])
    assert [a.transport.send("sn-b1", "g", 1, b"x") for _ in range(7)] == [True] * 5 + [False] * 2
    await wait_for(lambda: len(b.received) == 5)
    assert a.transport.send("sn-b1", "g", 1, b"room again")


async def test_the_server_bounds_requests_in_flight_per_peer(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    b.transport.limits = Limits(max_in_flight_per_peer=2)
    outcomes = await asyncio.gather(*(a.transport.call("sn-b1", "g", 7, b"") for _ in range(4)),
                                    return_exceptions=True)
    assert sum(isinstance(o, RemoteError) and "overloaded" in str(o) for o in outcomes) == 2
    assert sum(o == b"sn-a1:" for o in outcomes) == 2


async def test_close_fails_outstanding_requests(pair: tuple[Endpoint, Endpoint]) -> None:
    a, _b = pair
    future = a.transport.request("sn-b1", "g", 7, b"")
    await asyncio.sleep(0.1)
    await a.transport.close()
    with pytest.raises(PeerUnavailable, match="transport closed"):
        await future


async def test_metrics_report_per_peer_counters(pair: tuple[Endpoint, Endpoint]) -> None:
    a, _b = pair
    await a.transport.call("sn-b1", "g", 1, b"x")
    families = {f.name: f for f in a.transport.collect_metrics()}
    sent = families["ddb_transport_sent_messages"].samples
    assert [(s.labels["peer"], s.value) for s in sent] == [("sn-b1", 1.0)]
    assert families["ddb_transport_connected"].samples[0].value == 1.0


async def test_a_dispatcher_routes_by_kind(pair: tuple[Endpoint, Endpoint]) -> None:
    a, b = pair
    seen: list[bytes] = []
    dispatch = Dispatcher()
    dispatch.on_one_way(5, lambda sender, m: seen.append(m.payload))
    dispatch.on_call(6, lambda sender, m: m.payload.upper())
    b.transport.on_message, b.transport.on_request = dispatch.message, dispatch.request
    a.transport.send("sn-b1", "g", 5, b"five")
    assert await a.transport.call("sn-b1", "g", 6, b"six") == b"SIX"
    assert seen == [b"five"], "the one-way message sent first arrived first"
    with pytest.raises(RemoteError, match="no request handler for kind 7"):
        await a.transport.call("sn-b1", "g", 7, b"")
