"""The internal contract rebuilds a remote DynamoError as the same type with the same words."""

from dynamo.errors import ConditionalCheckFailedException, ValidationException
from proto.kinds import error_from_body
from router.backend import OperationNotSupported


def test_a_subclass_sharing_the_wire_type_does_not_replace_its_parent() -> None:
    assert issubclass(OperationNotSupported, ValidationException)  # the case that once broke this
    rebuilt = error_from_body(ValidationException("Cannot update attribute pk").to_body())
    assert type(rebuilt) is ValidationException
    assert rebuilt.message == "Cannot update attribute pk"


def test_extra_fields_survive() -> None:
    rebuilt = error_from_body(ConditionalCheckFailedException(Item={"a": {"S": "x"}}).to_body())
    assert isinstance(rebuilt, ConditionalCheckFailedException) and rebuilt.extra == {"Item": {"a": {"S": "x"}}}
