"""Transactions' pure parts: the lock kept in an item's stored bytes, what each action does to its item, and
DynamoDB's cancellation reasons."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import transactions as tx
from dynamo.errors import ConditionalCheckFailedException, ValidationException
from dynamo.items import KeySchema
from storagenode.locks import COMMITTED, PREPARED, Lock, committed_view, decode_lock, is_lock, lock_txn

images = st.one_of(st.none(), st.binary(max_size=64).map(lambda b: b"{" + b))


@given(st.sampled_from([PREPARED, COMMITTED]), st.binary(min_size=16, max_size=16), images, images,
       st.binary(max_size=40))
def test_a_lock_round_trips_and_is_never_mistaken_for_an_item(state: int, txn: bytes, old: bytes | None,
                                                              new: bytes | None, meta: bytes) -> None:
    lock = Lock(state, txn, old, new, meta)
    raw = lock.encode()
    assert is_lock(raw) and decode_lock(raw) == lock and lock_txn(raw) == txn
    assert committed_view(raw) == (new if state == COMMITTED else old)
    if old is not None:
        assert not is_lock(old) and committed_view(old) == old


def test_a_stored_item_is_never_a_lock() -> None:
    item = orjson.dumps({"pk": {"S": "\x00"}})
    assert not is_lock(item) and committed_view(item) == item and committed_view(None) is None


def test_decide_each_action() -> None:
    key = {"pk": {"S": "a"}}
    old = {**key, "n": {"N": "1"}}
    assert tx.decide("ConditionCheck", {"ConditionExpression": "attribute_exists(n)"}, key, old) == old
    assert tx.decide("Delete", {}, key, old) is None
    assert tx.decide("Put", {"Item": {**key, "m": {"S": "x"}}}, key, old) == {**key, "m": {"S": "x"}}
    assert tx.decide("Update", {"UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "2"}}},
                     key, old) == {**key, "n": {"N": "3"}}
    with pytest.raises(ConditionalCheckFailedException) as caught:
        tx.decide("ConditionCheck", {"ConditionExpression": "attribute_not_exists(n)",
                                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}, key, old)
    assert tx.reason(caught.value) == {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
                                       "Item": old}
    with pytest.raises(ConditionalCheckFailedException) as caught:
        tx.decide("Delete", {"ConditionExpression": "attribute_exists(n)"}, key, None)
    assert "Item" not in tx.reason(caught.value)
    with pytest.raises(ValidationException) as invalid:
        tx.decide("Update", {"UpdateExpression": "SET n = n + :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},
                  key, old)
    assert tx.reason(invalid.value)["Code"] == "ValidationError"


def test_expressions_and_keys_are_checked_before_anything_runs() -> None:
    key = {"pk": {"S": "a"}}
    with pytest.raises(ValidationException, match="Invalid ConditionExpression"):
        tx.check_expressions(tx.Action("ConditionCheck", {"ConditionExpression": "n = = 1"}, 0), key)
    tx.check_expressions(tx.Action("Delete", {}, 0), key)
    # An update of a key attribute is found when the action is decided: its cancellation reason.
    update = {"UpdateExpression": "SET pk = :v", "ExpressionAttributeValues": {":v": {"S": "b"}}}
    tx.check_expressions(tx.Action("Update", update, 0), key)
    with pytest.raises(ValidationException) as caught:
        tx.decide("Update", update, key, None)
    assert tx.reason(caught.value) == {"Code": "ValidationError", "Message": "One or more parameter values were "
                                       "invalid: Cannot update attribute pk. This attribute is part of the key"}


def test_keys_as_a_transaction_checks_them() -> None:
    schema = KeySchema("pk", "S", "sk", "N")
    assert tx.action_key("Put", {"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"S": "y"}}}, schema) == {
        "pk": {"S": "a"}, "sk": {"N": "1"}}
    with pytest.raises(ValidationException, match="One of the required keys was not given a value"):
        tx.action_key("Put", {"Item": {"pk": {"S": "a"}}}, schema)
    with pytest.raises(ValidationException, match="The number of conditions on the keys is invalid"):
        tx.action_key("Delete", {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"S": "y"}}}, schema)
    with pytest.raises(tx.KeyTypeMismatch) as caught:
        tx.action_key("Update", {"Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}, schema)
    assert tx.reason(caught.value)["Message"] == "One or more parameter values were invalid: Type mismatch for key"
    with pytest.raises(ValidationException, match="empty string"):
        tx.action_key("Delete", {"Key": {"pk": {"S": ""}, "sk": {"N": "1"}}}, schema)


def test_the_cancellation_names_every_reason_in_order() -> None:
    exc = tx.canceled([{"Code": "None"}, tx.CONFLICT_REASON, {"Code": "ConditionalCheckFailed"}])
    assert exc.message == ("Transaction cancelled, please refer cancellation reasons for specific reasons "
                           "[None, TransactionConflict, ConditionalCheckFailed]")
    assert exc.to_body()["CancellationReasons"][1] == {"Code": "TransactionConflict",
                                                      "Message": "Transaction is ongoing for the item"}


def test_one_item_twice_is_refused_whatever_the_key_order() -> None:
    one = tx.item_identity("t", {"pk": {"S": "a"}, "sk": {"N": "1"}})
    same = tx.item_identity("t", {"sk": {"N": "1"}, "pk": {"S": "a"}})
    with pytest.raises(ValidationException, match="multiple operations on one item"):
        tx.check_distinct([one, same])
    tx.check_distinct([one, tx.item_identity("u", {"pk": {"S": "a"}, "sk": {"N": "1"}})])


def test_a_transaction_carries_at_most_4_mb() -> None:
    """DynamoDB Local refused 11 puts of 390,000-character values (4,290,056 bytes) and took 10."""
    items = [{"pk": {"S": f"k{i}"}, "v": {"S": "x" * 390_000}} for i in range(11)]
    with pytest.raises(ValidationException) as caught:
        tx.check_payload(items)
    assert caught.value.message == "Transaction payload size cannot exceed 4MB. Payload Size: 4290056"
    tx.check_payload(items[:10])
