"""The benchmark's SigV4 signatures are botocore's, byte for byte, for the same request and time."""

from __future__ import annotations

import datetime
import time
from unittest.mock import patch

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.bench.client import Endpoint, HttpClient
from deploy.bench.sigv4 import CONTENT_TYPE, TARGET_PREFIX, Signer

TARGETS = ["GetItem", "PutItem", "UpdateItem", "Query", "BatchWriteItem", "CreateTable", "DescribeTable"]


def botocore_authorization(url: str, region: str, key: str, secret: str, target: str, body: bytes,
                           when: datetime.datetime) -> tuple[str, str]:
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}{target}"})
    with patch("botocore.auth.get_current_datetime", lambda: when):
        SigV4Auth(Credentials(key, secret), "dynamodb", region).add_auth(request)
    return request.headers["Authorization"], request.headers["X-Amz-Date"]


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=300),
    target=st.sampled_from(TARGETS),
    region=st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"]),
    key=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20),
    secret=st.text("abcdefghijklmnopqrstuvwxyz0123456789/+", min_size=1, max_size=40),
    port=st.sampled_from([80, 8000, 24001]),
    seconds=st.integers(0, 4_000_000_000),
)
def test_signature_matches_botocore(body: bytes, target: str, region: str,
                                    key: str, secret: str, port: int, seconds: int) -> None:
    endpoint = Endpoint.parse(f"http://127.0.0.1:{port}")
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)
    expected, amz_date = botocore_authorization(endpoint.url + "/", region, key, secret, target,
                                                body, when)
    signer = Signer(endpoint.host_header, region, key, secret)
    assert signer.amz_date(seconds) == amz_date
    assert signer.authorization(target, amz_date, body) == expected


def test_signing_key_is_recomputed_when_the_day_changes() -> None:
    signer = Signer("127.0.0.1:8000")
    for seconds in (86_399, 86_400, 86_400 + 3600):
        when = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)
        expected, amz_date = botocore_authorization("http://127.0.0.1:8000/", "us-east-1", "ddb",
                                                    "ddb", "GetItem", b"{}", when)
        assert signer.authorization("GetItem", signer.amz_date(seconds), b"{}") == expected


def test_a_changed_body_changes_the_signature() -> None:
    signer = Signer("127.0.0.1:8000")
    date = signer.amz_date(1_700_000_000)
    assert signer.authorization("GetItem", date, b"{}") != signer.authorization("GetItem", date, b"{ }")
    assert signer.authorization("GetItem", date, b"{}") != signer.authorization("PutItem", date, b"{}")


def test_request_message_carries_the_signed_headers() -> None:
    client = HttpClient(Endpoint.parse("http://localhost:8000"))
    message = client.message("GetItem", b'{"TableName":"t"}')
    head, _, body = message.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST / HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Host"] == "localhost:8000"
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert headers["Content-Length"] == str(len(body)) and body == b'{"TableName":"t"}'
    assert headers["Authorization"] == client.signer.authorization("GetItem", headers["X-Amz-Date"], body)
    assert abs(time.mktime(time.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - time.mktime(
        time.gmtime())) < 5


def test_endpoint_parsing() -> None:
    assert Endpoint.parse("http://localhost:8000") == Endpoint("http", "localhost", 8000)
    assert Endpoint.parse("127.0.0.1:9") == Endpoint("http", "127.0.0.1", 9)
    assert Endpoint.parse("https://example.test").port == 443
    assert Endpoint.parse("http://h:80").host_header == "h"
    with pytest.raises(ValueError):
        Endpoint.parse("ftp://h:1")
