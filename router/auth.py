"""Who is calling: the Authorization header, checked the way DynamoDB checks it before anything else.

``Authenticator`` is the seam for SigV4: ``AcceptAnyCredentials`` (today) checks only that a well-formed
AWS4 Authorization header is present, exactly as DynamoDB reports a missing or incomplete one, and returns
the caller's access key id and region from its Credential scope. A ``SigV4Verifier`` will take the same
``HttpRequest`` (method, path, headers, body) and also recompute the signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dynamo.errors import IncompleteSignatureException, MissingAuthenticationTokenException
from router.http import HttpRequest

MSG_MISSING_TOKEN = "Request is missing Authentication Token"
_REQUIRED_PARAMETERS = ("Credential", "Signature", "SignedHeaders")


@dataclass(frozen=True, slots=True)
class Identity:
    access_key_id: str
    # The region the client signed for (its Credential scope); empty when the scope does not say.
    region: str


class Authenticator(Protocol):
    def authenticate(self, request: HttpRequest) -> Identity:
        """Return the caller or raise the DynamoError DynamoDB would answer."""
        ...


def parse_authorization(header: str) -> dict[str, str]:
    """``AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=x;y, Signature=z`` -> its parameters."""
    _, _, rest = header.strip().partition(" ")
    parameters: dict[str, str] = {}
    for part in rest.replace(" ", "").split(","):
        name, sep, value = part.partition("=")
        if sep:
            parameters[name] = value
    return parameters


# Authorization headers differ per request only in their signature: what came before it, once checked, maps to
# the caller (bounded; cleared when full).
_KNOWN_PREFIXES_MAX = 1024


class AcceptAnyCredentials:
    """Any key and any region are accepted; only the header's presence and form are checked."""

    def __init__(self) -> None:
        self._known: dict[str, Identity] = {}

    def authenticate(self, request: HttpRequest) -> Identity:
        header = request.headers.get("authorization")
        if header:
            # The usual case: a header of a form seen before with a new signature (hex digits), and a date.
            cut = header.rfind("Signature=")
            if cut > 0:
                identity = self._known.get(header[:cut])
                signature = header[cut + 10:]
                if (identity is not None and signature.isalnum()
                        and ("x-amz-date" in request.headers or "date" in request.headers)):
                    return identity
        identity = self._check(request, header)
        assert header is not None  # _check refused a missing header
        cut = header.rfind("Signature=")
        if cut > 0 and header[cut + 10:].isalnum():
            if len(self._known) >= _KNOWN_PREFIXES_MAX:
                self._known.clear()
            self._known[header[:cut]] = identity
        return identity

    @staticmethod
    def _check(request: HttpRequest, header: str | None) -> Identity:
        if not header or not header.strip().startswith("AWS4-"):
            raise MissingAuthenticationTokenException(MSG_MISSING_TOKEN)
        parameters = parse_authorization(header)
        message = "".join(
            f"Authorization header requires '{name}' parameter. "
            for name in _REQUIRED_PARAMETERS
            if not parameters.get(name)
        )
        if "x-amz-date" not in request.headers and "date" not in request.headers:
            message += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        if message:
            raise IncompleteSignatureException(message + "Authorization=" + header)
        scope = parameters["Credential"].split("/")
        return Identity(access_key_id=scope[0], region=scope[2] if len(scope) >= 3 else "")
