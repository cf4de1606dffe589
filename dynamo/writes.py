"""Single-item writes as DynamoDB decides them: conditions, update expressions and ReturnValues.

The partition leader calls these with the item as it stands after every write already ordered before this
one (committed or not), so conditions see the latest state. The result is the *effect* that goes into the
replicated log (the new image, or a delete), plus what to answer the client. Followers apply effects and
never re-evaluate anything, so they cannot diverge.

Requests arrive already validated by the router (shape, values, keys); expressions are re-parsed here from
their text, which the parser caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamo.errors import ConditionalCheckFailedException, ValidationException
from dynamo.expressions import (
    Condition,
    ExpressionContext,
    Update,
    apply_update,
    evaluate,
    legacy_attribute_updates,
    legacy_expected_to_condition,
    parse_condition,
    parse_update,
)

Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """``new_item`` None means the item is absent afterwards. ``changed`` False means nothing to log."""

    new_item: Item | None
    changed: bool
    attributes: Item | None  # the response's "Attributes" (ReturnValues), None to omit it


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """A request's expressions, parsed once."""

    op: str  # PutItem | UpdateItem | DeleteItem
    key: Item
    item: Item | None  # PutItem's item
    condition: Condition | None
    update: Update | None
    return_values: str
    return_on_failure: str


def prepare(op: str, request: dict[str, Any], key: Item) -> PreparedWrite:
    """Parse the condition and update of a PutItem / UpdateItem / DeleteItem request.

    ``key`` is the item's primary key (extracted by the caller from ``Item`` or taken from ``Key``).
    Raises ValidationException for bad expressions or placeholders that are missing or unused.
    """
    names = request.get("ExpressionAttributeNames")
    values = request.get("ExpressionAttributeValues")
    ctx = ExpressionContext(names, values)
    condition: Condition | None = None
    update: Update | None = None
    if request.get("ConditionExpression") is not None:
        condition = parse_condition(request["ConditionExpression"], ctx)
    elif request.get("Expected") is not None:
        condition = legacy_expected_to_condition(request["Expected"], request.get("ConditionalOperator"))
    if op == "UpdateItem":
        if request.get("UpdateExpression") is not None:
            update = parse_update(request["UpdateExpression"], ctx)
        elif request.get("AttributeUpdates") is not None:
            update = legacy_attribute_updates(request["AttributeUpdates"])
    if names is not None or values is not None:
        ctx.check_all_used()
    return_values = request.get("ReturnValues") or "NONE"
    allowed = _RETURN_VALUES[op]
    if return_values not in allowed:
        # The enum itself is checked with the request's shape; this is DynamoDB's per-operation rule.
        raise ValidationException("ReturnValues can only be ALL_OLD or NONE")
    return PreparedWrite(
        op=op,
        key=key,
        item=request.get("Item") if op == "PutItem" else None,
        condition=condition,
        update=update,
        return_values=return_values,
        return_on_failure=request.get("ReturnValuesOnConditionCheckFailure") or "NONE",
    )


_RETURN_VALUES = {
    "PutItem": ("NONE", "ALL_OLD"),
    "DeleteItem": ("NONE", "ALL_OLD"),
    "UpdateItem": ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"),
}


def decide(write: PreparedWrite, old: Item | None) -> WriteOutcome:
    """The effect of ``write`` on the current item ``old`` (None if absent).

    Raises ConditionalCheckFailedException (carrying ``Item`` when ReturnValuesOnConditionCheckFailure is
    ALL_OLD and the item exists), or ValidationException for an update that is invalid on this item.
    """
    if write.condition is not None and not evaluate(write.condition, old):
        if write.return_on_failure == "ALL_OLD" and old is not None:
            raise ConditionalCheckFailedException(Item=old)
        raise ConditionalCheckFailedException()
    if write.op == "PutItem":
        assert write.item is not None
        return WriteOutcome(write.item, True, old if write.return_values == "ALL_OLD" else None)
    if write.op == "DeleteItem":
        return WriteOutcome(None, old is not None, old if write.return_values == "ALL_OLD" else None)
    assert write.op == "UpdateItem", write.op
    if write.update is None:
        # An UpdateItem with nothing to update still creates the item from its key, as DynamoDB does.
        new_item: Item = dict(old) if old is not None else dict(write.key)
        updated_old: Item = {}
        updated_new: Item = {}
    else:
        new_item, updated_old, updated_new = apply_update(old, write.update, write.key)
    rv = write.return_values
    attributes: Item | None
    if rv == "ALL_OLD":
        attributes = old
    elif rv == "ALL_NEW":
        attributes = new_item
    elif rv == "UPDATED_OLD":
        attributes = updated_old or None
    elif rv == "UPDATED_NEW":
        attributes = updated_new or None
    else:
        attributes = None
    return WriteOutcome(new_item, new_item != old, attributes)
