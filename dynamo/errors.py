"""DynamoDB's error types, as a client sees them on the wire.

Every expected failure a request can meet is one of these typed exceptions. The router turns one into
the JSON body ``{"__type": ..., "message": ...}`` with the HTTP status below; SDKs decide from the type
whether to retry. Broken invariants are assertions, never these.
"""

from __future__ import annotations

from typing import Any, ClassVar

_DDB = "com.amazonaws.dynamodb.v20120810#"
_CORAL = "com.amazon.coral.service#"

# The prefix DynamoDB puts on most ValidationExceptions about a request's values.
INVALID_PARAMETERS = "One or more parameter values were invalid: "


class DynamoError(Exception):
    """Base of every error a DynamoDB client may receive."""

    type_name: ClassVar[str] = _DDB + "InternalServerError"
    http_status: ClassVar[int] = 400
    retryable: ClassVar[bool] = False

    def __init__(self, message: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra: dict[str, Any] = extra

    @property
    def short_name(self) -> str:
        return self.type_name.rsplit("#", 1)[-1]

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"__type": self.type_name}
        if self.message:
            body["message"] = self.message
        body.update(self.extra)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationException(DynamoError):
    type_name = "com.amazon.coral.validate#ValidationException"


class SerializationException(DynamoError):
    type_name = _CORAL + "SerializationException"


class UnknownOperationException(DynamoError):
    type_name = _CORAL + "UnknownOperationException"


class MissingAuthenticationTokenException(DynamoError):
    type_name = _CORAL + "MissingAuthenticationTokenException"
    http_status = 400


class IncompleteSignatureException(DynamoError):
    type_name = _CORAL + "IncompleteSignatureException"


class InvalidSignatureException(DynamoError):
    type_name = _CORAL + "InvalidSignatureException"


class UnrecognizedClientException(DynamoError):
    type_name = _CORAL + "UnrecognizedClientException"


class AccessDeniedException(DynamoError):
    type_name = _CORAL + "AccessDeniedException"


class ResourceNotFoundException(DynamoError):
    type_name = _DDB + "ResourceNotFoundException"


class TableNotFoundException(DynamoError):
    """What the backup operations answer for a missing table (others answer ResourceNotFoundException)."""

    type_name = _DDB + "TableNotFoundException"


class ResourceInUseException(DynamoError):
    type_name = _DDB + "ResourceInUseException"


class LimitExceededException(DynamoError):
    type_name = _DDB + "LimitExceededException"


class ConditionalCheckFailedException(DynamoError):
    """Carries the item when ReturnValuesOnConditionCheckFailure=ALL_OLD asked for it (``Item`` key)."""

    type_name = _DDB + "ConditionalCheckFailedException"

    def __init__(self, message: str = "The conditional request failed", **extra: Any) -> None:
        super().__init__(message, **extra)


class DuplicateItemException(DynamoError):
    """A PartiQL INSERT of an item whose primary key is taken."""

    type_name = _DDB + "DuplicateItemException"

    def __init__(self, message: str = "Duplicate primary key exists in table", **extra: Any) -> None:
        super().__init__(message, **extra)


class ItemCollectionSizeLimitExceededException(DynamoError):
    type_name = _DDB + "ItemCollectionSizeLimitExceededException"


class ProvisionedThroughputExceededException(DynamoError):
    type_name = _DDB + "ProvisionedThroughputExceededException"
    retryable = True

    def __init__(
        self,
        message: str = "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
        **extra: Any,
    ) -> None:
        super().__init__(message, **extra)


class ThrottlingException(DynamoError):
    type_name = "com.amazon.coral.availability#ThrottlingException"
    retryable = True


class RequestLimitExceeded(DynamoError):
    type_name = _DDB + "RequestLimitExceeded"
    retryable = True


class TransactionCanceledException(DynamoError):
    """Carries ``CancellationReasons``, one per action of the transaction."""

    type_name = _DDB + "TransactionCanceledException"


class TransactionConflictException(DynamoError):
    type_name = _DDB + "TransactionConflictException"


class TransactionInProgressException(DynamoError):
    type_name = _DDB + "TransactionInProgressException"


class IdempotentParameterMismatchException(DynamoError):
    type_name = _DDB + "IdempotentParameterMismatchException"


class ExpiredIteratorException(DynamoError):
    """DynamoDB Streams: the shard iterator is older than 15 minutes."""

    type_name = _DDB + "ExpiredIteratorException"


class InternalServerError(DynamoError):
    """Something failed inside the cluster that the client may retry."""

    type_name = _DDB + "InternalServerError"
    http_status = 500
    retryable = True


class ServiceUnavailableException(DynamoError):
    """The partition cannot reach a quorum right now (for example two AZs down); retryable."""

    type_name = _DDB + "ServiceUnavailableException"
    http_status = 503
    retryable = True
