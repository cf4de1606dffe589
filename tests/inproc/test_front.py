"""The front door end to end: raw HTTP, real boto3 and the real AWS CLI against the in-memory backend."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from router.backend import RequestContext
from router.front import FrontConfig, FrontDoor, Outcome, new_request_id
from router.http import HttpServer
from tests.inproc.memory_backend import MemoryBackend

pytestmark = pytest.mark.timeout(120)

AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-date;x-amz-target, Signature=abc"
)


class FaultyBackend(MemoryBackend):
    async def get_item(self, request: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        if request["Key"].get("pk") == {"S": "crash"}:
            raise RuntimeError("backend bug")
        return await super().get_item(request, ctx)


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    server = HttpServer(FrontDoor(FaultyBackend(), FrontConfig(region="us-east-1")).handle)
    port = await server.start("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    await server.stop()


# ---- raw HTTP --------------------------------------------------------------------------------------------


async def raw(
    endpoint: str,
    body: bytes | None = b"{}",
    target: str | None = "DynamoDB_20120810.ListTables",
    content_type: str | None = "application/x-amz-json-1.0",
    auth: str | None = AUTH,
    method: str = "POST",
    path: str = "/",
) -> tuple[int, dict[str, str], bytes]:
    host, port = endpoint.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    headers = {"Host": f"{host}:{port}", "X-Amz-Date": "20240101T000000Z"}
    if target is not None:
        headers["X-Amz-Target"] = target
    if content_type is not None:
        headers["Content-Type"] = content_type
    if auth is not None:
        headers["Authorization"] = auth
    payload = body or b""
    headers["Content-Length"] = str(len(payload))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + payload)
    status_line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = status_line.decode().split("\r\n")
    response_headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            response_headers[name.lower()] = value.strip()
    data = await reader.readexactly(int(response_headers["content-length"]))
    writer.close()
    return int(lines[0].split()[1]), response_headers, data


def error_type(body: bytes) -> str:
    return str(json.loads(body)["__type"]).rsplit("#", 1)[1]


async def test_response_headers_as_dynamodb(endpoint: str) -> None:
    status, headers, body = await raw(endpoint)
    assert status == 200 and json.loads(body) == {"TableNames": []}
    assert re.fullmatch(r"[A-Z0-9]{52}", headers["x-amzn-requestid"])
    assert headers["x-amz-crc32"] == str(zlib.crc32(body))
    assert headers["content-type"] == "application/x-amz-json-1.0"
    _, headers2, _ = await raw(endpoint)
    assert headers2["x-amzn-requestid"] != headers["x-amzn-requestid"]


async def test_application_json_is_accepted_and_echoed(endpoint: str) -> None:
    status, headers, _ = await raw(endpoint, content_type="application/json")
    assert status == 200 and headers["content-type"] == "application/json"


async def test_bad_json_is_a_serialization_error(endpoint: str) -> None:
    for body in (b"{", b"}{", b"habababa", b'{"a":}', b"\xff\xfe"):
        status, _, data = await raw(endpoint, body=body)
        assert (status, error_type(data)) == (400, "SerializationException")


async def test_json_of_wrong_shape_is_a_serialization_error(endpoint: str) -> None:
    status, _, data = await raw(endpoint, body=b"[]")
    assert (status, error_type(data)) == (400, "SerializationException")
    status, _, data = await raw(endpoint, body=b'{"TableName": 5}', target="DynamoDB_20120810.DescribeTable")
    assert json.loads(data) == {
        "__type": "com.amazon.coral.service#SerializationException",
        "Message": "NUMBER_VALUE cannot be converted to String",
    }


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "DynamoDB_20120810",
        "DynamoDB_20120810.Nope",
        "DynamoDB_20111205.ListTables",
        "X.ListTables.Y",
    ],
)
async def test_unknown_or_missing_target(endpoint: str, target: str | None) -> None:
    status, _, data = await raw(endpoint, target=target)
    assert (status, error_type(data)) == (400, "UnknownOperationException")


async def test_wrong_content_type_or_method_is_a_bare_404(endpoint: str) -> None:
    for kwargs in ({"content_type": "text/plain"}, {"content_type": None}, {"method": "PUT"}):
        status, headers, data = await raw(endpoint, **kwargs)  # type: ignore[arg-type]
        assert (status, data) == (404, b"<UnknownOperationException/>\n")
        assert "x-amzn-requestid" in headers


async def test_missing_authorization(endpoint: str) -> None:
    for auth in (None, "Basic abc"):
        status, _, data = await raw(endpoint, auth=auth)
        assert status == 400
        assert json.loads(data) == {
            "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
            "message": "Request is missing Authentication Token",
        }


async def test_incomplete_authorization(endpoint: str) -> None:
    status, _, data = await raw(endpoint, auth="AWS4-HMAC-SHA256 Credential=a/b/c/d/e")
    assert (status, error_type(data)) == (400, "IncompleteSignatureException")
    assert json.loads(data)["message"].startswith(
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."
    )


async def test_a_known_credential_with_a_bad_signature_or_no_date_is_still_refused(endpoint: str) -> None:
    """The front door remembers a checked header up to its signature; a later header with that prefix is
    accepted only with a signature of the usual form and a date header, else checked in full."""
    assert (await raw(endpoint, auth=AUTH))[0] == 200
    assert (await raw(endpoint, auth=AUTH.replace("Signature=abc", "Signature=0f9e")))[0] == 200
    status, _, data = await raw(endpoint, auth=AUTH.replace("Signature=abc", "Signature="))
    assert (status, error_type(data)) == (400, "IncompleteSignatureException")
    assert "requires 'Signature' parameter" in json.loads(data)["message"]
    status, _, data = await raw(endpoint, auth=AUTH.replace("Signature=abc", "Signature=a, b"))
    assert status == 200  # as the full check reads it: Signature "a", an extra part without a value
    reader, writer = await asyncio.open_connection(*endpoint.removeprefix("http://").split(":"))
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"
                 b"X-Amz-Target: DynamoDB_20120810.ListTables\r\nAuthorization: " + AUTH.encode()
                 + b"\r\nContent-Length: 2\r\n\r\n{}")
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 400"), head  # no X-Amz-Date nor Date header


async def test_empty_body_is_a_serialization_error(endpoint: str) -> None:
    status, _, data = await raw(endpoint, body=None)
    assert (status, error_type(data)) == (400, "SerializationException")


async def test_validation_errors_are_400(endpoint: str) -> None:
    status, _, data = await raw(endpoint, body=b'{"Limit": 0}')
    assert status == 400 and error_type(data) == "ValidationException"
    assert json.loads(data)["message"].startswith("1 validation error detected: Value '0' at 'limit'")


async def test_health_check(endpoint: str) -> None:
    status, headers, data = await raw(
        endpoint, method="GET", body=None, target=None, auth=None, content_type=None
    )
    assert (status, data) == (200, b"healthy: dynamodb.us-east-1.amazonaws.com")
    status, _, _ = await raw(endpoint, method="GET", path="/health", body=None, target=None, auth=None)
    assert status == 404


async def test_unexpected_backend_error_is_500_and_the_server_keeps_serving(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    await raw(
        endpoint,
        body=b'{"TableName":"tab","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],'
        b'"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}',
        target="DynamoDB_20120810.CreateTable",
    )
    status, _, data = await raw(
        endpoint, body=b'{"TableName":"tab","Key":{"pk":{"S":"crash"}}}', target="DynamoDB_20120810.GetItem"
    )
    assert status == 500
    assert json.loads(data) == {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "Internal server error",
    }
    assert "backend bug" in caplog.text
    status, _, data = await raw(
        endpoint, body=b'{"TableName":"tab","Key":{"pk":{"S":"fine"}}}', target="DynamoDB_20120810.GetItem"
    )
    assert (status, json.loads(data)) == (200, {})


async def test_known_but_unimplemented_operations_say_so(endpoint: str) -> None:
    for operation in ("ListBackups", "Scan", "CreateGlobalTable"):
        status, _, data = await raw(
            endpoint, target=f"DynamoDB_20120810.{operation}", body=b'{"TableName":"abc"}'
        )
        assert status == 400 and error_type(data) == "ValidationException"
        assert json.loads(data)["message"] == f"ddb does not support the {operation} operation yet"


async def test_pipelined_operations_answer_in_order(endpoint: str) -> None:
    host, port = endpoint.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    def request(target: str, body: bytes) -> bytes:
        return (
            f"POST / HTTP/1.1\r\nHost: h\r\nX-Amz-Target: DynamoDB_20120810.{target}\r\n"
            f"Content-Type: application/x-amz-json-1.0\r\nAuthorization: {AUTH}\r\nX-Amz-Date: x\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    writer.write(request("ListTables", b"{}") + request("DescribeLimits", b"{}") + request("Bogus", b"{}"))
    answers = []
    for _ in range(3):
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
        length = int(re.search(r"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        answers.append(json.loads(await reader.readexactly(length)))
    writer.close()
    assert answers[0] == {"TableNames": []}
    assert "AccountMaxReadCapacityUnits" in answers[1]
    assert answers[2]["__type"].endswith("UnknownOperationException")


# ---- boto3 -----------------------------------------------------------------------------------------------


def client(endpoint: str, **config: Any) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="anything",
        aws_secret_access_key="anything",
        config=Config(retries={"max_attempts": 1}, **config),
    )


def boto3_session(endpoint: str) -> dict[str, Any]:
    """Everything a boto3 user does first, run synchronously (in a worker thread)."""
    ddb = client(endpoint)
    seen: dict[str, Any] = {}
    created = ddb.create_table(
        TableName="users",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "N"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
    )["TableDescription"]
    seen["created"] = created
    ddb.get_waiter("table_exists").wait(TableName="users", WaiterConfig={"Delay": 0.1, "MaxAttempts": 5})
    seen["described"] = ddb.describe_table(TableName="users")["Table"]
    seen["listed"] = ddb.list_tables()["TableNames"]
    item = {"id": {"S": "u1"}, "at": {"N": "1.50"}, "blob": {"B": b"\x00\x01"}, "tags": {"SS": ["a", "b"]}}
    ddb.put_item(TableName="users", Item=item)
    seen["got"] = ddb.get_item(TableName="users", Key={"id": {"S": "u1"}, "at": {"N": "1.50"}}).get("Item")
    seen["old"] = ddb.delete_item(
        TableName="users", Key={"id": {"S": "u1"}, "at": {"N": "1.50"}}, ReturnValues="ALL_OLD"
    ).get("Attributes")
    seen["gone"] = ddb.get_item(TableName="users", Key={"id": {"S": "u1"}, "at": {"N": "1.50"}}).get("Item")
    ddb.delete_table(TableName="users")
    seen["after_delete"] = ddb.list_tables()["TableNames"]
    seen["limits"] = ddb.describe_limits()
    seen["endpoints"] = ddb.describe_endpoints()["Endpoints"]
    return seen


async def test_boto3_table_and_item_lifecycle(endpoint: str) -> None:
    seen = await asyncio.to_thread(boto3_session, endpoint)
    created = seen["created"]
    assert created["TableArn"] == "arn:aws:dynamodb:us-east-1:000000000000:table/users"
    assert created["TableStatus"] == "CREATING"
    assert created["ProvisionedThroughput"] == {
        "NumberOfDecreasesToday": 0,
        "ReadCapacityUnits": 5,
        "WriteCapacityUnits": 7,
    }
    assert created["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert seen["described"]["TableStatus"] == "ACTIVE"
    assert seen["listed"] == ["users"]
    assert seen["got"] == {
        "id": {"S": "u1"},
        "at": {"N": "1.5"},  # DynamoDB returns numbers normalised
        "blob": {"B": b"\x00\x01"},
        "tags": {"SS": ["a", "b"]},
    }
    assert seen["old"] == seen["got"]
    assert seen["gone"] is None
    assert seen["after_delete"] == []
    assert seen["limits"]["TableMaxReadCapacityUnits"] == 40_000
    assert seen["endpoints"][0]["CachePeriodInMinutes"] == 1440


def boto3_errors(endpoint: str) -> dict[str, tuple[str, str]]:
    ddb = client(endpoint, parameter_validation=False)
    found: dict[str, tuple[str, str]] = {}

    def capture(name: str, call: Any, **kwargs: Any) -> None:
        try:
            call(**kwargs)
        except ClientError as error:
            found[name] = (error.response["Error"]["Code"], error.response["Error"]["Message"])

    capture("missing", ddb.describe_table, TableName="nope")
    capture("short", ddb.describe_table, TableName="ab")
    schema = {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    }
    capture("no_throughput", ddb.create_table, TableName="tbl", **schema)
    capture(
        "type",
        ddb.create_table,
        TableName="tbl",
        ProvisionedThroughput={"ReadCapacityUnits": "5", "WriteCapacityUnits": 5},
        **schema,
    )
    ddb.create_table(TableName="tbl", BillingMode="PAY_PER_REQUEST", **schema)
    capture("exists", ddb.create_table, TableName="tbl", BillingMode="PAY_PER_REQUEST", **schema)
    capture("unsupported", ddb.scan, TableName="tbl")
    return found


async def test_boto3_sees_dynamodb_errors(endpoint: str) -> None:
    found = await asyncio.to_thread(boto3_errors, endpoint)
    assert found["missing"] == (
        "ResourceNotFoundException",
        "Requested resource not found: Table: nope not found",
    )
    assert found["short"] == (
        "ValidationException",
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3",
    )
    assert found["no_throughput"] == (
        "ValidationException",
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be "
        "specified when BillingMode is PROVISIONED",
    )
    assert found["type"] == ("SerializationException", "STRING_VALUE cannot be converted to Long")
    assert found["exists"] == ("ResourceInUseException", "Table already exists: tbl")
    assert found["unsupported"] == ("ValidationException", "ddb does not support the Scan operation yet")


# ---- the AWS CLI -----------------------------------------------------------------------------------------


def aws_cli() -> list[str]:
    local = Path(sys.executable).with_name("aws")
    if local.exists():
        return [str(local)]
    found = shutil.which("aws")
    if found is None:
        pytest.skip("the AWS CLI is not installed")
    return [found]


async def run_cli(endpoint: str, *args: str) -> tuple[int, str, str]:
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_PAGER="",
    )
    process = await asyncio.create_subprocess_exec(
        *aws_cli(),
        "dynamodb",
        *args,
        "--endpoint-url",
        endpoint,
        "--output",
        "json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_aws_cli(endpoint: str) -> None:
    code, out, err = await run_cli(
        endpoint,
        "create-table",
        "--table-name",
        "cli-table",
        "--attribute-definitions",
        "AttributeName=k,AttributeType=S",
        "--key-schema",
        "AttributeName=k,KeyType=HASH",
        "--billing-mode",
        "PAY_PER_REQUEST",
    )
    assert code == 0, err
    description = json.loads(out)["TableDescription"]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert description["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
    code, out, err = await run_cli(endpoint, "list-tables")
    assert code == 0, err
    assert json.loads(out)["TableNames"] == ["cli-table"]
    code, out, err = await run_cli(endpoint, "describe-table", "--table-name", "absent")
    assert code != 0
    assert "ResourceNotFoundException" in err and "Table: absent not found" in err


async def test_observer_sees_every_outcome() -> None:
    outcomes: list[Outcome] = []
    server = HttpServer(FrontDoor(MemoryBackend(), observer=outcomes.append).handle)
    port = await server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        await raw(endpoint)
        await raw(endpoint, target="DynamoDB_20120810.DescribeTable", body=b'{"TableName":"nope"}')
        await raw(endpoint, target="Nope")
        await raw(endpoint, method="GET", body=None, target=None, auth=None, content_type=None)
    finally:
        await server.stop()
    summary = [(o.operation, o.status, o.error) for o in outcomes]
    assert summary == [
        ("ListTables", 200, ""),
        ("DescribeTable", 400, "ResourceNotFoundException"),
        ("", 400, "UnknownOperationException"),
        ("", 200, ""),
    ]
    assert all(o.duration_s >= 0 for o in outcomes)


def test_request_ids_are_unique_and_shaped_like_dynamodb_s() -> None:
    seen = {new_request_id() for _ in range(5000)}
    assert len(seen) == 5000
    assert all(re.fullmatch(r"[A-Z0-9]{52}", one) for one in seen)


async def test_arns_use_the_cluster_region_whatever_the_client_signed_for() -> None:
    server = HttpServer(FrontDoor(MemoryBackend(), FrontConfig(region="eu-central-1")).handle)
    port = await server.start()
    try:
        body = (
            b'{"TableName":"tab","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],'
            b'"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}'
        )
        status, _, data = await raw(
            f"http://127.0.0.1:{port}", body=body, target="DynamoDB_20120810.CreateTable"
        )
    finally:
        await server.stop()
    assert status == 200
    assert (
        json.loads(data)["TableDescription"]["TableArn"]
        == "arn:aws:dynamodb:eu-central-1:000000000000:table/tab"
    )


def test_backend_methods_are_named_after_operations() -> None:
    from dynamo.requests import OPERATIONS
    from router.backend import Backend, BaseBackend, method_name

    assert method_name("TransactWriteItems") == "transact_write_items"
    assert method_name("DescribeTimeToLive") == "describe_time_to_live"
    names = {method_name(operation) for operation in OPERATIONS}
    protocol_methods = {name for name in vars(Backend) if not name.startswith("_")}
    assert protocol_methods <= names
    # The base class answers every method of the protocol.
    assert all(callable(getattr(BaseBackend, name, None)) for name in protocol_methods)
