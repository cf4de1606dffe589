"""AWS Signature Version 4 verification: an ``Authenticator`` that recomputes the client's signature.

The checks run in DynamoDB's order and answer with its error types: a missing or incomplete Authorization
header (``AcceptAnyCredentials`` checks those), an unsupported algorithm or malformed Credential scope
(IncompleteSignatureException), an unknown access key (UnrecognizedClientException), a request signed more
than 15 minutes away from our clock, ``Host`` not signed, or a signature that does not match
(InvalidSignatureException).

Secrets come from a lookup function (access key id -> secret access key or None), so where keys live is the
caller's business. Signing keys are cached per (key, day, region, service) as SDKs do, since deriving one
costs four HMACs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from dynamo.errors import IncompleteSignatureException, InvalidSignatureException, UnrecognizedClientException
from router.auth import AcceptAnyCredentials, Identity, parse_authorization
from router.http import HttpRequest

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW_S = 15 * 60
MAX_CACHED_SIGNING_KEYS = 1024
MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
MSG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)

SecretLookup = Callable[[str], str | None]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _format_amz_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse_amz_date(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def canonical_request(request: HttpRequest, signed_headers: list[str]) -> str:
    path, _, query = request.path.partition("?")
    # The path as the client encoded it, each segment normalised to SigV4's encoding.
    canonical_path = urllib.parse.quote(urllib.parse.unquote(path or "/"), safe="/~")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(name, safe='-_.~')}={urllib.parse.quote(value, safe='-_.~')}"
        for name, value in sorted(pairs)
    )
    headers = "".join(
        f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in signed_headers
    )
    payload_hash = request.headers.get("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        (request.method, canonical_path, canonical_query, headers, ";".join(signed_headers), payload_hash)
    )


class SigV4Verifier:
    def __init__(
        self,
        secrets: SecretLookup,
        *,
        clock: Callable[[], float] = time.time,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
    ) -> None:
        self._secrets = secrets
        self._clock = clock
        self._max_skew_s = max_clock_skew_s
        self._presence = AcceptAnyCredentials()
        self._signing_keys: dict[tuple[str, str, str, str, str], bytes] = {}

    def authenticate(self, request: HttpRequest) -> Identity:
        self._presence.authenticate(request)  # missing or incomplete header, worded as DynamoDB does
        header = request.headers["authorization"].strip()
        algorithm = header.partition(" ")[0]
        if algorithm != ALGORITHM:
            raise IncompleteSignatureException(
                f"Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now). "
            )
        parameters = parse_authorization(header)
        credential = parameters["Credential"].rstrip("/")
        scope = credential.split("/")
        if len(scope) != 5:
            raise IncompleteSignatureException(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
                f"got '{credential}'"
            )
        key_id, day, region, service, terminator = scope
        amz_date = request.headers.get("x-amz-date") or ""
        if not amz_date:
            # Only a Date header: SigV4 then signs the ISO form of it.
            amz_date = _format_amz_date(_http_date(request.headers.get("date", "")))
        signed_at = _parse_amz_date(amz_date)
        self._check_scope(service, terminator, day, amz_date)
        secret = self._secrets(key_id)
        if secret is None:
            raise UnrecognizedClientException(MSG_UNKNOWN_KEY)
        now = self._clock()
        if signed_at < now - self._max_skew_s:
            raise InvalidSignatureException(
                f"Signature expired: {amz_date} is now earlier than {_format_amz_date(now - self._max_skew_s)} "
                f"({_format_amz_date(now)} - 15 min.)"
            )
        if signed_at > now + self._max_skew_s:
            raise InvalidSignatureException(
                f"Signature not yet current: {amz_date} is still later than "
                f"{_format_amz_date(now + self._max_skew_s)} ({_format_amz_date(now)} + 15 min.)"
            )
        signed_headers = parameters["SignedHeaders"].lower().split(";")
        if "host" not in signed_headers:
            raise InvalidSignatureException("'Host' must be a 'SignedHeader' in the AWS Authorization.")
        digest = hashlib.sha256(canonical_request(request, signed_headers).encode()).hexdigest()
        string_to_sign = "\n".join((ALGORITHM, amz_date, "/".join(scope[1:]), digest))
        signing_key = self._signing_key(secret, key_id, day, region, service)
        expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parameters["Signature"]):
            raise InvalidSignatureException(MSG_MISMATCH)
        return Identity(access_key_id=key_id, region=region)

    @staticmethod
    def _check_scope(service: str, terminator: str, day: str, amz_date: str) -> None:
        problems = []
        if service != "dynamodb":
            problems.append("Credential should be scoped to correct service: 'dynamodb'. ")
        if terminator != "aws4_request":
            problems.append(
                f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
            )
        if day != amz_date[:8]:
            problems.append(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{day}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        if problems:
            raise InvalidSignatureException("".join(problems).strip())

    def _signing_key(self, secret: str, key_id: str, day: str, region: str, service: str) -> bytes:
        cache_key = (key_id, secret, day, region, service)
        cached = self._signing_keys.get(cache_key)
        if cached is None:
            if len(self._signing_keys) >= MAX_CACHED_SIGNING_KEYS:
                self._signing_keys.clear()
            cached = _hmac(
                _hmac(_hmac(_hmac(("AWS4" + secret).encode(), day), region), service), "aws4_request"
            )
            self._signing_keys[cache_key] = cached
        return cached


def _http_date(text: str) -> float:
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
