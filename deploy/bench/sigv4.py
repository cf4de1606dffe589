"""AWS Signature Version 4 for DynamoDB's JSON protocol, cheap enough to sign every benchmark request.

The request shape is fixed (``POST /``, no query string, four signed headers), so the canonical request is
a cached prefix per target plus the date and the body's hash; the signing key is cached per day and the
``X-Amz-Date`` text per second. Signatures match botocore's for the same request (tested).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from hashlib import sha256

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "dynamodb"
CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "DynamoDB_20120810."
SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-target"
_SHA256_BLOCK_BYTES = 64


def signing_key(secret_key: str, day: str, region: str, service: str = SERVICE) -> bytes:
    key = hmac.new(f"AWS4{secret_key}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class Signer:
    """Signs ``POST /`` DynamoDB requests for one host (``host`` as sent in the Host header, port included)."""

    def __init__(self, host: str, region: str = "us-east-1", access_key: str = "ddb",
                 secret_key: str = "ddb") -> None:
        self.host = host
        self.region = region
        self.access_key = access_key
        self._secret_key = secret_key
        self._day = ""
        self._key = b""
        self._inner = sha256()
        self._outer = sha256()
        self._scope = ""
        self._credential = ""
        self._second = -1
        self._amz_date = ""
        self._canonical_head = f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\nx-amz-date:"

    def amz_date(self, now_s: float | None = None) -> str:
        """``YYYYMMDDTHHMMSSZ`` for now (or ``now_s``), formatted once per second."""
        second = int(time.time() if now_s is None else now_s)
        if second != self._second:
            self._second = second
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        return self._amz_date

    def _key_for(self, day: str) -> None:
        self._day = day
        self._key = signing_key(self._secret_key, day, self.region)
        # HMAC (RFC 2104) with the key's padded inner and outer hash states made once per day: each
        # signature then costs two hash copies, several times cheaper than hmac.new or hmac.digest.
        padded = self._key.ljust(_SHA256_BLOCK_BYTES, b"\0")
        self._inner = sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = sha256(bytes(b ^ 0x5C for b in padded))
        self._scope = f"{day}/{self.region}/{SERVICE}/aws4_request"
        self._credential = f"{ALGORITHM} Credential={self.access_key}/{self._scope}, SignedHeaders={SIGNED_HEADERS}"

    def authorization(self, target: str, amz_date: str, body: bytes) -> str:
        """The Authorization header for a request to ``DynamoDB_20120810.<target>`` carrying ``body``."""
        day = amz_date[:8]
        if day != self._day:
            self._key_for(day)
        canonical = (f"{self._canonical_head}{amz_date}\nx-amz-target:{TARGET_PREFIX}{target}\n\n{SIGNED_HEADERS}\n"
                     f"{sha256(body).hexdigest()}")
        to_sign = f"{ALGORITHM}\n{amz_date}\n{self._scope}\n{sha256(canonical.encode()).hexdigest()}"
        inner = self._inner.copy()
        inner.update(to_sign.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        signature = outer.hexdigest()
        return f"{self._credential}, Signature={signature}"
