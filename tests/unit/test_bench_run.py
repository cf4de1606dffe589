"""The benchmark end to end against a small in-memory DynamoDB in a thread: client, loader, runner, report, CLI.

The fake speaks just enough of the protocol for the benchmark's own calls, and can misbehave on purpose:
chunked bodies, closing the connection every few answers, throttling, leaving batch items unprocessed,
tables that stay CREATING for a while.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools
import orjson
import pytest

pytest.importorskip("hdrh", reason="the hdrhistogram package is not installed (ddb bench needs it)")
from click.testing import CliRunner
from rich.console import Console

from deploy.bench import trivial
from deploy.bench.client import BenchClientError, BotoClient, Endpoint, HttpClient, error_name
from deploy.bench.command import DEFAULT_ENDPOINT, bench, cluster_endpoint
from deploy.bench.main import BenchOptions, bench_once, compare_interleaved
from deploy.bench.report import render_comparison
from deploy.bench.workloads import WORKLOADS
from deploy.cluster import load_or_create_config

PREFIX = "DynamoDB_20120810."


@dataclass
class Misbehaviour:
    chunked: bool = False
    close_every: int = 0
    throttle_gets_every: int = 0
    unprocessed_once: bool = False
    creating_describes: int = 1
    silent: bool = False


@dataclass
class FakeDynamo:
    """Tables of items keyed by (pk, sk); answers the calls the benchmark makes."""

    misbehave: Misbehaviour = field(default_factory=Misbehaviour)
    tables: dict[str, dict[tuple[str, int], dict[str, Any]]] = field(default_factory=dict)
    creating: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    unsigned: int = 0

    def answer(self, target: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls[target] = self.calls.get(target, 0) + 1
        name = request.get("TableName", "")
        if target == "ListTables":
            return 200, {"TableNames": sorted(self.tables)}
        if target == "CreateTable":
            if name in self.tables:
                return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ResourceInUseException", "message": "in use"}
            self.tables[name] = {}
            self.creating[name] = self.misbehave.creating_describes
            return 200, {"TableDescription": {"TableName": name, "TableStatus": "CREATING"}}
        if target == "TransactWriteItems":
            for action in request["TransactItems"]:
                item = action["Put"]["Item"]
                self.tables[action["Put"]["TableName"]][(item["pk"]["S"], int(item["sk"]["N"]))] = item
            return 200, {}
        if target == "BatchWriteItem":
            [(table, writes)] = request["RequestItems"].items()
            left = []
            if self.misbehave.unprocessed_once:
                self.misbehave.unprocessed_once = False
                writes, left = writes[:-1], writes[-1:]
            for write in writes:
                item = write["PutRequest"]["Item"]
                self.tables[table][(item["pk"]["S"], int(item["sk"]["N"]))] = item
            return 200, {"UnprocessedItems": {table: left} if left else {}}
        if name not in self.tables:
            return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                         "message": "Requested resource not found"}
        items = self.tables[name]
        if target == "DescribeTable":
            status = "CREATING" if self.creating.get(name, 0) > 0 else "ACTIVE"
            self.creating[name] = self.creating.get(name, 0) - 1
            return 200, {"Table": {"TableName": name, "TableStatus": status, "ItemCount": len(items)}}
        if target == "DeleteTable":
            del self.tables[name]
            return 200, {"TableDescription": {"TableName": name, "TableStatus": "DELETING"}}
        if target == "PutItem":
            item = request["Item"]
            items[(item["pk"]["S"], int(item["sk"]["N"]))] = item
            return 200, {}
        key = request.get("Key")
        at = (key["pk"]["S"], int(key["sk"]["N"])) if key else None
        if target == "GetItem":
            every = self.misbehave.throttle_gets_every
            if every and self.calls[target] % every == 0:
                return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                             "message": "slow down"}
            assert at is not None
            return 200, {"Item": items[at]} if at in items else {}
        if target == "UpdateItem":
            assert at is not None and request["UpdateExpression"] == "SET v = :v"
            item = items.setdefault(at, {"pk": key["pk"], "sk": key["sk"]})
            item["v"] = request["ExpressionAttributeValues"][":v"]
            return 200, {}
        if target == "Query" and "IndexName" in request:
            assert request["IndexName"] == "by_g" and request["KeyConditionExpression"] == "g = :g"
            group = request["ExpressionAttributeValues"][":g"]["S"]
            chosen = [item for item in items.values() if item.get("g", {}).get("S") == group]
            assert len(chosen) == 10, (group, len(chosen))  # the workload's 10 records per index key
            return 200, {"Items": chosen, "Count": len(chosen), "ScannedCount": len(chosen)}
        if target == "Query":
            values = request["ExpressionAttributeValues"]
            start = int(values[":s"]["N"]) if ":s" in values else 0
            found = sorted(((sk, item) for (pk, sk), item in items.items()
                            if pk == values[":p"]["S"] and sk >= start), key=lambda pair: pair[0])
            chosen = [item for _, item in found][: request.get("Limit", len(found))]
            return 200, {"Items": chosen, "Count": len(chosen), "ScannedCount": len(chosen)}
        return 400, {"__type": "com.amazon.coral.service#UnknownOperationException"}


class _FakeProtocol(asyncio.Protocol):
    def __init__(self, fake: FakeDynamo) -> None:
        self.fake = fake
        self.parser = httptools.HttpRequestParser(self)
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.answered = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        headers, body = self.headers, b"".join(self.body)
        self.headers, self.body = {}, []
        if self.fake.misbehave.silent:
            return
        if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential="):
            self.fake.unsigned += 1
        status, reply = self.fake.answer(headers["x-amz-target"].removeprefix(PREFIX), orjson.loads(body))
        payload = orjson.dumps(reply)
        self.answered += 1
        close = bool(self.fake.misbehave.close_every) and self.answered % self.fake.misbehave.close_every == 0
        head = f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n" \
               f"Content-Type: application/x-amz-json-1.0\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}"
        if self.fake.misbehave.chunked:
            half = len(payload) // 2
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:half], payload[half:]) if part)
            self.transport.write(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n")
        else:
            self.transport.write(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        if close:
            self.transport.close()


class ServerThread:
    """An asyncio server on 127.0.0.1 (ephemeral port) in its own thread and event loop."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(self._loop.create_server(self._factory, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def fake() -> Iterator[tuple[FakeDynamo, ServerThread]]:
    dynamo = FakeDynamo()
    server = ServerThread(lambda: _FakeProtocol(dynamo))
    yield dynamo, server
    server.stop()


@pytest.fixture
def trivial_server() -> Iterator[ServerThread]:
    server = ServerThread(trivial.TrivialProtocol)
    yield server
    server.stop()


QUIET = Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115 - lives for the test session


# -- the client ----------------------------------------------------------------------------------------


async def test_client_keeps_one_connection_to_the_trivial_server(trivial_server: ServerThread) -> None:
    client = HttpClient(Endpoint.parse(trivial_server.endpoint))
    replies = [await client.call("GetItem", b'{"TableName":"t"}') for _ in range(300)]
    await client.close()
    assert replies == [(200, b"{}")] * 300
    assert client.connects == 1


async def test_client_reads_chunked_bodies_and_reconnects_after_close(fake: tuple[FakeDynamo, ServerThread]) -> None:
    dynamo, server = fake
    dynamo.misbehave = Misbehaviour(chunked=True, close_every=3)
    client = HttpClient(Endpoint.parse(server.endpoint))
    for _ in range(10):
        status, body = await client.call("ListTables", b"{}")
        assert (status, orjson.loads(body)) == (200, {"TableNames": []})
    await client.close()
    assert client.connects == 4  # answers 3, 6 and 9 closed the connection
    assert dynamo.unsigned == 0


async def test_client_times_out_a_silent_server(fake: tuple[FakeDynamo, ServerThread]) -> None:
    dynamo, server = fake
    dynamo.misbehave = Misbehaviour(silent=True)
    client = HttpClient(Endpoint.parse(server.endpoint), timeout_s=0.2)
    with pytest.raises(BenchClientError, match="timed out"):
        await client.call("ListTables", b"{}")
    await client.close()


async def test_client_reports_a_refused_connection() -> None:
    with pytest.raises(BenchClientError, match="cannot connect"):
        await HttpClient(Endpoint.parse("http://127.0.0.1:1"), timeout_s=2).call("ListTables", b"{}")


def test_error_names() -> None:
    assert error_name(400, b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}') == \
        "ResourceNotFoundException"
    assert error_name(400, b'{"__type": "ValidationException", "message": "x"}') == "ValidationException"
    assert error_name(503, b"<html>busy</html>") == "HTTP 503"


# -- whole runs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
async def test_every_workload_runs_clean(fake: tuple[FakeDynamo, ServerThread], workload: str) -> None:
    dynamo, server = fake
    dynamo.misbehave = Misbehaviour(unprocessed_once=True, creating_describes=2)
    options = BenchOptions(endpoint=server.endpoint, workload=workload, records=260, ops=400, duration_s=None,
                           clients=4, table="bench_t", consistent=True)
    report = await bench_once(options, QUIET)
    spec = WORKLOADS[workload]
    assert report["ops"] == 400 and report["errors"] == 0 and report["cancelled"] == 0
    assert set(report["by_op"]) == {op.value for op, _ in spec.mix}
    assert sum(entry["ops"] for entry in report["timeline"]) == 400
    assert report["latency"]["count"] == 400 and report["latency"]["p99_ms"] > 0
    assert report["ops_per_s"] > 0 and report["consistent"] is True
    items = dynamo.tables["bench_t"]
    inserts = report["by_op"].get("insert", {}).get("count", 0)
    puts = {position for position in items}
    if spec.load_records:
        assert report["load"]["records"] == 260
        assert len(puts) == 260 + inserts  # the unprocessed item was sent again
    else:
        assert report["load"] is None and 0 < len(puts) <= 260
    assert dynamo.unsigned == 0


async def test_errors_are_counted_by_name_and_not_timed(fake: tuple[FakeDynamo, ServerThread]) -> None:
    dynamo, server = fake
    dynamo.misbehave = Misbehaviour(throttle_gets_every=4)
    report = await bench_once(BenchOptions(endpoint=server.endpoint, workload="get", records=100, ops=200,
                                           duration_s=None, clients=2), QUIET)
    assert report["errors"] == 50 and report["ops"] == 150
    assert report["errors_by_type"] == {"read ProvisionedThroughputExceededException": 50}
    assert report["latency"]["count"] == 150


async def test_an_existing_table_is_dropped_and_created_again(fake: tuple[FakeDynamo, ServerThread]) -> None:
    dynamo, server = fake
    dynamo.tables["ddb_bench"] = {("old", 0): {}}
    await bench_once(BenchOptions(endpoint=server.endpoint, workload="c", records=50, ops=20, duration_s=None,
                                  clients=2), QUIET)
    assert ("old", 0) not in dynamo.tables["ddb_bench"] and len(dynamo.tables["ddb_bench"]) == 50
    assert dynamo.calls["DeleteTable"] == 1 and dynamo.calls["CreateTable"] == 1


async def test_a_duration_bound_run_stops_on_time(trivial_server: ServerThread) -> None:
    report = await bench_once(BenchOptions(endpoint=trivial_server.endpoint, workload="get", duration_s=1.0,
                                           clients=8, load=False), QUIET)
    assert 0.9 < report["elapsed_s"] < 2.0 and report["ops"] > 100 and report["errors"] == 0
    # The server listens in this very process: its CPU is measured (one process) and costs something per op.
    assert report["server_cpu"]["processes"] == 1 and report["server_cpu"]["us_per_op"] > 0


async def test_warmup_is_not_recorded(fake: tuple[FakeDynamo, ServerThread]) -> None:
    dynamo, server = fake
    report = await bench_once(BenchOptions(endpoint=server.endpoint, workload="get", records=50, ops=100,
                                           duration_s=None, clients=2, warmup_s=0.3), QUIET)
    assert report["ops"] == 100 and report["latency"]["count"] == 100
    assert dynamo.calls["GetItem"] > 100


async def test_boto3_client_runs_the_same_workload(fake: tuple[FakeDynamo, ServerThread]) -> None:
    _, server = fake
    report = await bench_once(BenchOptions(endpoint=server.endpoint, workload="a", records=100, ops=60,
                                           duration_s=None, clients=3, client="boto3"), QUIET)
    assert report["client"] == "boto3" and report["ops"] == 60 and report["errors"] == 0


async def test_boto3_client_returns_errors_as_dynamodb_bodies(fake: tuple[FakeDynamo, ServerThread]) -> None:
    _, server = fake
    client = BotoClient(Endpoint.parse(server.endpoint), 1)
    status, body = await client.call("DescribeTable", b'{"TableName":"missing"}')
    await client.close()
    assert status == 400 and error_name(status, body) == "ResourceNotFoundException"


async def test_an_interleaved_comparison_measures_each_target_in_turns(
        fake: tuple[FakeDynamo, ServerThread], trivial_server: ServerThread) -> None:
    dynamo, server = fake
    targets = [BenchOptions(endpoint=server.endpoint, workload="get", records=50, duration_s=0.9, clients=2,
                            target="fake"),
               BenchOptions(endpoint=trivial_server.endpoint, workload="get", duration_s=0.9, clients=2,
                            load=False, target="trivial")]
    reports = await compare_interleaved(targets, QUIET, slice_s=0.3)
    assert [r["target"] for r in reports] == ["fake", "trivial"]
    for report in reports:
        assert len(report["slices"]) == 3 and report["errors"] == 0 and report["timeline"] == []
        assert 0.85 < report["elapsed_s"] < 2.5  # three turns of 0.3 s (plus each turn's drain)
        assert report["latency"]["count"] == report["ops"] > 0
        assert all(s["ops_per_s"] > 0 for s in report["slices"])
    assert dynamo.calls["GetItem"] >= reports[0]["ops"] and "ddb_bench" in dynamo.tables
    console = Console(record=True, width=200)
    render_comparison(console, reports)
    text = console.export_text()
    assert "interleaved: 3 turns each" in text and "–" in text and ", median " in text  # per-turn ratios


def test_interleave_needs_compare_and_a_duration() -> None:
    for args in (["--interleave", "2"], ["--compare", "--interleave", "2", "--ops", "10"]):
        result = CliRunner().invoke(bench, args)
        assert result.exit_code == 2 and "--interleave goes with --compare" in result.output


def test_the_command_prints_tables_and_writes_json(fake: tuple[FakeDynamo, ServerThread], tmp_path: Path) -> None:
    _, server = fake
    out = tmp_path / "run.json"
    result = CliRunner().invoke(bench, ["--endpoint", server.endpoint, "--workload", "b", "--records", "100",
                                        "--ops", "200", "--clients", "4", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "YCSB B: read mostly" in result.output and "p99" in result.output and "per second" in result.output
    report = orjson.loads(out.read_bytes())
    assert report["workload"] == "b" and report["ops"] == 200 and set(report["by_op"]) == {"read", "update"}


def test_the_command_prints_only_json_to_stdout_with_a_dash(fake: tuple[FakeDynamo, ServerThread]) -> None:
    _, server = fake
    result = CliRunner().invoke(bench, ["--endpoint", server.endpoint, "--workload", "get", "--records", "50",
                                        "--ops", "50", "--clients", "2", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["ops"] == 50


def test_the_command_refuses_ops_with_duration() -> None:
    result = CliRunner().invoke(bench, ["--ops", "5", "--duration", "1"])
    assert result.exit_code != 0 and "not both" in result.output


def test_the_command_says_when_nothing_answers() -> None:
    result = CliRunner().invoke(bench, ["--endpoint", "http://127.0.0.1:1", "--ops", "5"])
    assert result.exit_code == 1 and "cannot connect" in result.output


async def test_a_cancelled_request_does_not_poison_the_connection(fake: tuple[FakeDynamo, ServerThread]) -> None:
    dynamo, server = fake
    client = HttpClient(Endpoint.parse(server.endpoint))
    dynamo.misbehave = Misbehaviour(silent=True)
    task = asyncio.ensure_future(client.call("ListTables", b"{}"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    dynamo.misbehave = Misbehaviour()
    assert await client.call("ListTables", b"{}") == (200, b'{"TableNames":[]}')
    assert client.connects == 2
    await client.close()


def test_compare_measures_the_endpoint_and_says_which_peers_are_missing(
        fake: tuple[FakeDynamo, ServerThread], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, server = fake
    monkeypatch.setenv("DDB_PEERS_DIR", str(tmp_path))
    out = tmp_path / "compare.json"
    result = CliRunner().invoke(bench, ["--compare", "--endpoint", server.endpoint, "--workload", "get",
                                        "--records", "50", "--ops", "100", "--clients", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "not installed: moto, dynalite, ddblocal" in result.output
    assert "ddb ÷ target ops/s" in result.output
    runs = orjson.loads(out.read_bytes())["runs"]
    assert [run["target"] for run in runs] == ["ddb"] and runs[0]["ops"] == 100


async def test_timeouts_are_counted_as_client_errors(fake: tuple[FakeDynamo, ServerThread]) -> None:
    dynamo, server = fake
    dynamo.misbehave = Misbehaviour(silent=True)
    report = await bench_once(BenchOptions(endpoint=server.endpoint, workload="get", ops=4, duration_s=None,
                                           clients=2, load=False, timeout_s=0.1), QUIET)
    assert report["ops"] == 0 and report["errors"] == 4
    assert report["errors_by_type"] == {"read timed out": 4}


def test_the_default_endpoint_is_the_local_clusters_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDB_DATA_DIR", str(tmp_path))
    assert cluster_endpoint() == DEFAULT_ENDPOINT
    (tmp_path / "cluster.json").write_text("{not json")
    assert cluster_endpoint() == DEFAULT_ENDPOINT
    (tmp_path / "cluster.json").unlink()
    config, _ = load_or_create_config(tmp_path, None, 24100)
    assert cluster_endpoint() == config.router_endpoint and config.router_endpoint.endswith(":24100")


async def test_connect_keeps_an_open_connection(trivial_server: ServerThread) -> None:
    client = HttpClient(Endpoint.parse(trivial_server.endpoint))
    await client.connect()
    await client.call("GetItem", b"{}")
    await client.connect()
    await client.call("GetItem", b"{}")
    assert client.connects == 1
    await client.close()
    await client.connect()
    assert client.connects == 2
    await client.close()


def test_compare_measures_a_server_already_running_named_in_peers(
        fake: tuple[FakeDynamo, ServerThread], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, server = fake
    monkeypatch.setenv("DDB_PEERS_DIR", str(tmp_path))
    out = tmp_path / "compare.json"
    result = CliRunner().invoke(bench, ["--compare", "--endpoint", server.endpoint, "--peers",
                                        f"base={server.endpoint}", "--workload", "get", "--records", "50",
                                        "--ops", "60", "--clients", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "not installed" not in result.output  # only the running server was asked for
    runs = orjson.loads(out.read_bytes())["runs"]
    assert [(run["target"], run["endpoint"], run["ops"]) for run in runs] == [
        ("ddb", server.endpoint, 60), ("base", server.endpoint, 60)]


def test_compare_refuses_a_running_peer_that_does_not_answer_or_an_unknown_name(
        fake: tuple[FakeDynamo, ServerThread]) -> None:
    _, server = fake
    for peers, expected in (("base=http://127.0.0.1:1", "base: nothing answers at http://127.0.0.1:1"),
                            ("=http://127.0.0.1:1", "NAME=URL needs a name"),
                            ("nosuchpeer", "unknown peers nosuchpeer")):
        result = CliRunner().invoke(bench, ["--compare", "--endpoint", server.endpoint, "--peers", peers,
                                            "--ops", "5", "--clients", "1"])
        assert result.exit_code == 1 and expected in result.output, result.output


def test_the_per_turn_ratios_show_their_range_and_median() -> None:
    from deploy.bench.report import _slice_ratio_range

    base = {"slices": [{"ops_per_s": 100.0}, {"ops_per_s": 300.0}, {"ops_per_s": 200.0}]}
    other = {"slices": [{"ops_per_s": 100.0}, {"ops_per_s": 100.0}, {"ops_per_s": 100.0}]}
    assert _slice_ratio_range(base, other) == " (1.00–3.00, median 2.00)"
    assert _slice_ratio_range(base, base) == "" and _slice_ratio_range(base, {}) == ""


def test_a_target_that_completed_nothing_has_no_ratio() -> None:
    """moto timed out on every GSI Query of the benchmark: its row says "-" where a ratio would divide by 0."""
    from io import StringIO

    from rich.console import Console

    from deploy.bench.report import render_comparison

    def report(target: str, ops_per_s: float, p99_ms: float) -> dict[str, Any]:
        return {"target": target, "title": "GSI", "clients": 32, "ops_per_s": ops_per_s,
                "errors": 0 if ops_per_s else 64,
                "latency": {"p50_ms": p99_ms / 2, "p99_ms": p99_ms, "p99.9_ms": p99_ms}}

    out = StringIO()
    render_comparison(Console(file=out, width=200), [report("ddb", 1000, 60), report("moto", 0, 0),
                                                     report("dynalite", 2000, 30)])
    text = out.getvalue()
    assert "nan" not in text
    assert "0.50x" in text and "2.00x" in text
    (moto_row,) = [line for line in text.splitlines() if "moto" in line]
    assert moto_row.rstrip().endswith("-")
