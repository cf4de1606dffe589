"""SigV4 verification against signatures made by botocore itself, and end to end with boto3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dynamo.errors import (
    DynamoError,
    IncompleteSignatureException,
    InvalidSignatureException,
    UnrecognizedClientException,
)
from router.front import FrontDoor
from router.http import HttpRequest, HttpServer
from router.sigv4 import SigV4Verifier
from tests.inproc.memory_backend import MemoryBackend

pytestmark = pytest.mark.timeout(60)

SECRETS = {"AKIDGOOD": "secret-good", "AKIDOTHER": "secret-other"}
BODY = b'{"TableName":"abc"}'


def signed(
    key: str = "AKIDGOOD",
    secret: str = "secret-good",
    region: str = "eu-west-1",
    body: bytes = BODY,
    path: str = "/",
) -> HttpRequest:
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:8000{path}",
        data=body,
        headers={
            "X-Amz-Target": "DynamoDB_20120810.DescribeTable",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    SigV4Auth(Credentials(key, secret), "dynamodb", region).add_auth(request)
    headers = {name.lower(): str(value) for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:8000"  # botocore signs it; the HTTP client sends it
    return HttpRequest("POST", path, headers, body)


def verifier(now: float | None = None) -> SigV4Verifier:
    return SigV4Verifier(SECRETS.get, clock=(lambda: now) if now is not None else time.time)


def failure(request: HttpRequest, now: float | None = None) -> DynamoError:
    with pytest.raises(DynamoError) as caught:
        verifier(now).authenticate(request)
    return caught.value


def test_a_botocore_signature_verifies() -> None:
    identity = verifier().authenticate(signed())
    assert (identity.access_key_id, identity.region) == ("AKIDGOOD", "eu-west-1")


def test_query_strings_and_paths_are_canonicalised() -> None:
    verifier().authenticate(signed(path="/some/path?b=2&a=1&c="))


def test_tampered_body_or_header_fails() -> None:
    request = signed()
    request.body = b'{"TableName":"abd"}'
    error = failure(request)
    assert isinstance(error, InvalidSignatureException)
    assert error.message.startswith("The request signature we calculated does not match")
    request = signed()
    request.headers["x-amz-target"] = "DynamoDB_20120810.DeleteTable"
    assert isinstance(failure(request), InvalidSignatureException)


def test_wrong_secret_and_unknown_key() -> None:
    assert isinstance(failure(signed(secret="nope")), InvalidSignatureException)
    error = failure(signed(key="AKIDUNKNOWN"))
    assert isinstance(error, UnrecognizedClientException)
    assert error.message == "The security token included in the request is invalid."


def test_clock_skew() -> None:
    signed_at = time.time()
    request = signed()
    verifier(signed_at + 14 * 60).authenticate(request)
    error = failure(request, signed_at + 16 * 60)
    assert isinstance(error, InvalidSignatureException) and error.message.startswith("Signature expired: ")
    error = failure(request, signed_at - 16 * 60)
    assert error.message.startswith("Signature not yet current: ")


def test_malformed_authorization() -> None:
    request = signed()
    request.headers["authorization"] = request.headers["authorization"].replace(
        "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"
    )
    error = failure(request)
    assert isinstance(error, IncompleteSignatureException)
    assert error.message == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1' (only AWS4-HMAC-SHA256 for now). "
    request = signed()
    request.headers["authorization"] = request.headers["authorization"].replace("/aws4_request", "")
    assert failure(request).message.startswith("Credential must have exactly 5 slash-delimited elements")
    request = signed()
    signed_headers = request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    request.headers["authorization"] = request.headers["authorization"].replace(
        signed_headers, signed_headers.replace("host;", "")
    )
    assert failure(request).message == "'Host' must be a 'SignedHeader' in the AWS Authorization."


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    server = HttpServer(FrontDoor(MemoryBackend(), authenticator=SigV4Verifier(SECRETS.get)).handle)
    port = await server.start()
    yield f"http://127.0.0.1:{port}"
    await server.stop()


def boto3_calls(endpoint: str) -> dict[str, Any]:
    def client(key: str, secret: str) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )

    seen: dict[str, Any] = {"tables": client("AKIDGOOD", "secret-good").list_tables()["TableNames"]}
    for name, key, secret in (("bad_secret", "AKIDGOOD", "wrong"), ("unknown", "AKIDNOPE", "x")):
        try:
            client(key, secret).list_tables()
        except ClientError as error:
            seen[name] = error.response["Error"]["Code"]
    return seen


async def test_boto3_through_sigv4(endpoint: str) -> None:
    seen = await asyncio.to_thread(boto3_calls, endpoint)
    assert seen == {
        "tables": [],
        "bad_secret": "InvalidSignatureException",
        "unknown": "UnrecognizedClientException",
    }
