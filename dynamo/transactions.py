"""TransactWriteItems and TransactGetItems as DynamoDB defines them: what an action does to its item, the
cancellation reasons, and the rules a request must follow before anything runs. Pure.

Where each action runs and how the transaction commits is the cluster's business (``router`` plans and
coordinates, ``storagenode.txn`` holds the locks); this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from dynamo import writes
from dynamo.errors import (
    INVALID_PARAMETERS,
    ConditionalCheckFailedException,
    TransactionCanceledException,
    ValidationException,
)
from dynamo.expressions import ExpressionContext, evaluate, parse_condition
from dynamo.items import KeySchema, validate_key
from dynamo.size import item_size

Item = dict[str, Any]

ACTIONS = ("ConditionCheck", "Put", "Delete", "Update")
# The single-item operation each action behaves as.
_AS_OPERATION = {"Put": "PutItem", "Delete": "DeleteItem", "Update": "UpdateItem"}
MSG_SAME_ITEM = "Transaction request cannot include multiple operations on one item"
MSG_CONFLICT = "Transaction is ongoing for the item"
MSG_CONDITION_FAILED = "The conditional request failed"
# How DynamoDB Local words a transaction's key problems (a single-item operation words them otherwise).
MSG_KEY_MISSING = "One of the required keys was not given a value"
MSG_KEY_CONDITIONS = "The number of conditions on the keys is invalid"
MSG_KEY_TYPE = INVALID_PARAMETERS + "Type mismatch for key"


@dataclass(frozen=True, slots=True)
class Action:
    """One TransactItems entry: its kind, its body (the Put / Update / ... structure) and its place."""

    kind: str
    body: dict[str, Any]
    position: int

    @staticmethod
    def of(entry: dict[str, Any], position: int) -> Action:
        kind = next(name for name in ACTIONS if name in entry)  # the request's shape checked there is one
        return Action(kind, entry[kind], position)


class KeyTypeMismatch(ValidationException):
    """A key attribute of the wrong type: the action's cancellation reason (ValidationError), not an error of
    the whole request, as DynamoDB Local answers it."""


def action_key(kind: str, body: dict[str, Any], schema: KeySchema) -> Item:
    """The primary key an action (Put's item, or the others' Key) names, checked as a transaction checks it:
    ValidationException for a missing or extra key attribute (nothing runs), KeyTypeMismatch for a wrong
    type."""
    if kind == "Put":
        item = body["Item"]
        if any(name not in item for name, _, _ in schema.attributes()):
            raise ValidationException(MSG_KEY_MISSING)
        key = {name: item[name] for name, _, _ in schema.attributes()}
    else:
        key = body["Key"]
        if set(key) != {name for name, _, _ in schema.attributes()}:
            raise ValidationException(MSG_KEY_CONDITIONS)
    if any(expected not in key[name] for name, expected, _ in schema.attributes()):
        raise KeyTypeMismatch(MSG_KEY_TYPE)
    return validate_key(key, schema)  # the values' own limits (empty, too long)


def check_expressions(action: Action, key: Item) -> None:
    """Parse the action's expressions now (ValidationException), before anything is sent anywhere. An
    update of a key attribute is the action's cancellation reason instead, found when it is decided."""
    if action.kind == "ConditionCheck":
        _check_condition(action.body)
    else:
        writes.prepare(_AS_OPERATION[action.kind], action.body, key)


def _check_condition(body: dict[str, Any]) -> Any:
    ctx = ExpressionContext(body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues"))
    condition = parse_condition(body["ConditionExpression"], ctx)
    ctx.check_all_used()
    return condition


def decide(kind: str, body: dict[str, Any], key: Item, old: Item | None) -> Item | None:
    """The item after the action (None: absent), given the item before. ConditionCheck leaves it as it is.

    Raises ConditionalCheckFailedException (with ``Item`` when ReturnValuesOnConditionCheckFailure is
    ALL_OLD) or ValidationException (an update that is invalid on this item)."""
    if kind == "ConditionCheck":
        condition = _check_condition(body)
        if not evaluate(condition, old):
            if body.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and old is not None:
                raise ConditionalCheckFailedException(Item=old)
            raise ConditionalCheckFailedException()
        return old
    outcome = writes.decide(writes.prepare(_AS_OPERATION[kind], body, key), old)
    return outcome.new_item


def reason(exc: Exception | None) -> dict[str, Any]:
    """One action's entry in CancellationReasons."""
    if exc is None:
        return {"Code": "None"}
    if isinstance(exc, ConditionalCheckFailedException):
        out: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": MSG_CONDITION_FAILED}
        if "Item" in exc.extra:
            out["Item"] = exc.extra["Item"]
        return out
    if isinstance(exc, ValidationException):
        return {"Code": "ValidationError", "Message": exc.message}
    raise AssertionError(f"no cancellation reason for {exc!r}")


CONFLICT_REASON = {"Code": "TransactionConflict", "Message": MSG_CONFLICT}


def canceled(reasons: list[dict[str, Any]]) -> TransactionCanceledException:
    """DynamoDB's cancellation: the message lists every action's code, in order."""
    codes = ", ".join(r["Code"] for r in reasons)
    return TransactionCanceledException(
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        CancellationReasons=reasons,
    )


def item_identity(table: str, key: Item) -> tuple[str, bytes]:
    """What makes two actions target "one item": the table and the key's values."""
    return table, orjson.dumps(key, option=orjson.OPT_SORT_KEYS)


def check_distinct(identities: list[tuple[str, bytes]]) -> None:
    if len(set(identities)) != len(identities):
        raise ValidationException(MSG_SAME_ITEM)


MAX_PAYLOAD_BYTES = 4 * 1024 * 1024


def check_payload(items: list[Item]) -> None:
    """The 4 MB limit on what a TransactWriteItems carries: its Put items and the other actions' keys, in
    DynamoDB's item sizes, worded as DynamoDB Local words it."""
    payload = sum(item_size(item) for item in items)
    if payload > MAX_PAYLOAD_BYTES:
        raise ValidationException(f"Transaction payload size cannot exceed 4MB. Payload Size: {payload}")
