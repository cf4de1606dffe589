"""A fake DynamoDB endpoint for testing the chaos machinery itself (and for `ddb chaos --fake`).

It keeps items in memory and speaks just enough of the protocol for the chaos workloads: CreateTable,
DescribeTable, GetItem, PutItem, UpdateItem, TransactWriteItems (Update items) and TransactGetItems on
tables keyed by ``k`` (a string). Requests go through ``dynamo.requests.validate_request`` and writes
through ``dynamo.writes`` (conditions, update expressions), so what passes here is valid DynamoDB. A
correct fake is linearizable by construction (one event loop, one dict).

``FakeFlaws`` make it lie on purpose, as a broken database would: serve stale reads (the previous
version of an item) or acknowledge writes it never applies. The checker must catch both.

``FakeInjector`` turns the fault schedule into misbehaviour a client can see: a *kill* closes every
connection without an answer; a *pause* holds requests until the window closes and then applies them
(long after the client gave up: an indeterminate write that lands late); a *partition* answers half the
requests with 500 after applying some of them anyway; *slow* adds latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
from dataclasses import dataclass
from typing import Any

import orjson

from deploy.chaos.schedule import FaultKind, FaultWindow
from dynamo.errors import DynamoError
from dynamo.requests import is_operation, validate_request
from dynamo.writes import decide, prepare

PREFIX = "DynamoDB_20120810."
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
FLAKY_ANSWER_DELAY_S = 0.2
KEY = "k"  # the workloads' partition key attribute


class _Reject(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


@dataclass(frozen=True, slots=True)
class FakeFlaws:
    stale_read_probability: float = 0.0
    lost_write_probability: float = 0.0

    @classmethod
    def named(cls, name: str) -> FakeFlaws:
        """``correct``, ``stale`` or ``lossy`` (for `ddb chaos --fake NAME`)."""
        flaws = {"correct": cls(), "stale": cls(stale_read_probability=0.2), "lossy": cls(lost_write_probability=0.1)}
        if name not in flaws:
            raise ValueError(f"unknown fake {name!r}: choose from {', '.join(flaws)}")
        return flaws[name]


class FakeDynamo:
    def __init__(self, flaws: FakeFlaws = FakeFlaws(), seed: int = 0) -> None:
        self.flaws = flaws
        self.rng = random.Random(seed)
        self.tables: set[str] = set()
        # Every version of every item, oldest first (None: deleted / absent), for stale reads.
        self.versions: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
        self.down = False
        self.flaky = False
        self.slow_ms = 0
        self._resume = asyncio.Event()
        self._resume.set()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.requests = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        return f"http://{bound[0]}:{bound[1]}"

    async def stop(self) -> None:
        self._resume.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    def kill(self) -> None:
        self.down = True
        for writer in list(self._connections):
            writer.close()

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.down:
                    return  # a dead server answers nothing
                status, payload = await self._handle(headers.get("x-amz-target", ""), body)
                if status == 0 or writer.is_closing():
                    return
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/x-amz-json-1.0\r\n"
                             b"Content-Length: %d\r\n\r\n" % (status, len(payload)) + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    async def _handle(self, target: str, raw: bytes) -> tuple[int, bytes]:
        self.requests += 1
        if not self._resume.is_set():
            await self._resume.wait()  # paused: the request waits, then runs long after the client gave up
        if self.slow_ms:
            await asyncio.sleep(self.slow_ms / 1000.0)
        if self.down:
            return 0, b""
        operation = target.removeprefix(PREFIX)
        try:
            request = orjson.loads(raw)
            if self.flaky and self.rng.random() < 0.5:
                if self.rng.random() < 0.5:
                    self._dispatch(operation, request)  # applied, but the answer is lost in the partition
                await asyncio.sleep(FLAKY_ANSWER_DELAY_S)  # as a router waiting out its own timeout would
                raise _Reject(500, "InternalServerError", "fake partition")
            return 200, orjson.dumps(self._dispatch(operation, request))
        except _Reject as exc:
            return exc.status, orjson.dumps({"__type": ERROR_PREFIX + exc.error, "message": exc.message})

    # -- operations ------------------------------------------------------------------------------------

    def _dispatch(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        handler = {"CreateTable": self._create_table, "DescribeTable": self._describe_table,
                   "GetItem": self._get_item, "PutItem": self._write, "UpdateItem": self._write,
                   "TransactWriteItems": self._transact_write, "TransactGetItems": self._transact_get,
                   }.get(operation)
        if handler is None or not is_operation(operation):
            raise _Reject(400, "UnknownOperationException", f"fake does not know {operation}")
        try:
            # The real request validation and write semantics (conditions, update expressions) of dynamo/.
            return handler(operation, validate_request(operation, request))
        except DynamoError as exc:
            raise _Reject(exc.http_status, exc.short_name, exc.message) from None

    def _table(self, request: dict[str, Any]) -> str:
        table = request.get("TableName", "")
        if table not in self.tables:
            raise _Reject(400, "ResourceNotFoundException", "Requested resource not found")
        return str(table)

    def _create_table(self, _operation: str, request: dict[str, Any]) -> dict[str, Any]:
        table = request["TableName"]
        if table in self.tables:
            raise _Reject(400, "ResourceInUseException", f"Table already exists: {table}")
        self.tables.add(table)
        return {"TableDescription": {"TableName": table, "TableStatus": "ACTIVE"}}

    def _describe_table(self, _operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return {"Table": {"TableName": self._table(request), "TableStatus": "ACTIVE"}}

    def current(self, table: str, key: str) -> dict[str, Any] | None:
        versions = self.versions.get((table, key))
        return versions[-1] if versions else None

    def _store(self, table: str, key: str, item: dict[str, Any] | None) -> None:
        if self.rng.random() < self.flaws.lost_write_probability:
            return  # acknowledged, never applied
        self.versions.setdefault((table, key), []).append(item)

    def _get_item(self, _operation: str, request: dict[str, Any]) -> dict[str, Any]:
        table = self._table(request)
        key = _key_of(request["Key"])
        versions = self.versions.get((table, key), [])
        item = versions[-1] if versions else None
        if len(versions) >= 2 and self.rng.random() < self.flaws.stale_read_probability:
            item = versions[-2]
        return {"Item": copy.deepcopy(item)} if item is not None else {}

    def _decide(self, operation: str, request: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
        """(table, key, new item) for one PutItem / UpdateItem, or a _Reject if its condition fails."""
        table = self._table(request)
        key_item = {KEY: request["Item"][KEY]} if operation == "PutItem" else request["Key"]
        key = _key_of(key_item)
        outcome = decide(prepare(operation, request, key_item), copy.deepcopy(self.current(table, key)))
        return table, key, outcome.new_item

    def _write(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        table, key, item = self._decide(operation, request)
        self._store(table, key, item)
        return {}

    def _transact_write(self, _operation: str, request: dict[str, Any]) -> dict[str, Any]:
        effects = []
        for entry in request["TransactItems"]:
            if set(entry) != {"Update"}:
                raise _Reject(400, "ValidationException", "the fake only does the bank's Update transactions")
            try:
                effects.append(self._decide("UpdateItem", entry["Update"]))
            except DynamoError as exc:
                raise _Reject(400, "TransactionCanceledException",
                              f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                              f"[{exc.short_name}]") from None
        for table, key, item in effects:
            self._store(table, key, item)  # a lossy fake may drop half a transaction
        return {}

    def _transact_get(self, _operation: str, request: dict[str, Any]) -> dict[str, Any]:
        responses = []
        for entry in request["TransactItems"]:
            get = entry["Get"]
            item = self.current(self._table(get), _key_of(get["Key"]))
            responses.append({"Item": copy.deepcopy(item)} if item is not None else {})
        return {"Responses": responses}


def _key_of(item: dict[str, Any]) -> str:
    value = item.get(KEY)
    if not isinstance(value, dict) or set(value) != {"S"}:
        raise _Reject(400, "ValidationException", f"The provided key element does not match the schema (key {KEY}: S)")
    return str(value["S"])


class FakeInjector:
    """Applies a fault window to a ``FakeDynamo`` (see the module docstring for what each kind does)."""

    NODES = ("sn-a1", "sn-b1", "sn-c1")
    AZS = ("a", "b", "c")

    def __init__(self, fake: FakeDynamo) -> None:
        self.fake = fake

    def begin(self, window: FaultWindow) -> str:
        if window.kind in (FaultKind.KILL, FaultKind.WIPE):  # one process: a lost disk is a crash here
            self.fake.kill()
        elif window.kind is FaultKind.PAUSE:
            self.fake.pause()
        elif window.kind is FaultKind.PARTITION:
            self.fake.flaky = True
        else:
            self.fake.slow_ms = window.delay_ms * 4
        return f"fake: {window.label()}"

    def end(self, window: FaultWindow) -> str:
        if window.kind in (FaultKind.KILL, FaultKind.WIPE):
            self.fake.down = False
        elif window.kind is FaultKind.PAUSE:
            self.fake.resume()
        elif window.kind is FaultKind.PARTITION:
            self.fake.flaky = False
        else:
            self.fake.slow_ms = 0
        return f"fake: healed {window.label()}"

    def heal_all(self) -> list[str]:
        fake = self.fake
        active = fake.down or fake.flaky or fake.slow_ms > 0 or fake.paused
        fake.down = False
        fake.flaky = False
        fake.slow_ms = 0
        fake.resume()
        return ["fake: healed everything"] if active else []
