"""What the chaos clients do, as DynamoDB requests, and how each answer becomes a history entry.

* ``register``: strongly consistent GetItem, blind PutItem and compare-and-set (PutItem with a
  ConditionExpression on the value this client last saw). Every written value is unique in the run.
* ``append``: UpdateItem ``SET l = list_append(if_not_exists(l, :empty), :x)`` with a unique element, and
  strongly consistent reads of the whole list.
* ``bank``: transfers between accounts with TransactWriteItems (a conditional debit and a credit) and
  snapshots of every account with TransactGetItems; the total must never change. Needs transactions:
  ``probe`` finds out whether the cluster has them.

Keys rotate: a few keys are active at a time and each retires after ``ops_per_key`` operations, so every
key's history stays short enough for the linearizability search. Every run uses fresh keys (a per-run
tag), so old data never mixes into a new history.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from deploy.chaos.client import Answer
from deploy.chaos.history import OpKind, Outcome

KEY_ATTR = "k"
WORKLOADS = ("register", "append", "bank")


@dataclass(frozen=True, slots=True)
class Request:
    kind: OpKind
    key: str
    value: Any
    operation: str  # the DynamoDB operation, e.g. "PutItem"
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Interpreted:
    outcome: Outcome
    result: Any = None
    error: str | None = None


def table_request(table: str) -> dict[str, Any]:
    return {"TableName": table, "KeySchema": [{"AttributeName": KEY_ATTR, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": KEY_ATTR, "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"}


def _key(key: str) -> dict[str, Any]:
    return {KEY_ATTR: {"S": key}}


def _passthrough(answer: Answer) -> Interpreted:
    return Interpreted(answer.outcome, None, answer.error)


class Workload(Protocol):
    name: str
    table: str

    def next_request(self, client: int, rng: random.Random) -> Request: ...

    def interpret(self, client: int, request: Request, answer: Answer) -> Interpreted: ...

    def keys(self) -> list[str]: ...

    def final_read(self, key: str) -> Request: ...


class _Keys:
    """A window of active keys; each serves ``ops_per_key`` operations, then a fresh key takes its slot.
    A key also retires after ``max_indeterminate_writes``: every write that may or may not have happened
    multiplies the checker's search on that key, so a key sees only a few."""

    def __init__(self, tag: str, active: int, ops_per_key: int, max_indeterminate_writes: int = 3) -> None:
        assert active >= 1 and ops_per_key >= 1 and max_indeterminate_writes >= 1
        self.tag = tag
        self.ops_per_key = ops_per_key
        self.max_indeterminate_writes = max_indeterminate_writes
        self.used: list[str] = []
        self._indeterminate: dict[str, int] = {}
        self._slots: list[list[Any]] = []
        for _ in range(active):
            self._slots.append([self._fresh(), 0])

    def indeterminate_write(self, key: str) -> None:
        count = self._indeterminate.get(key, 0) + 1
        self._indeterminate[key] = count
        if count >= self.max_indeterminate_writes:
            for slot in self._slots:
                if slot[0] == key:
                    slot[0], slot[1] = self._fresh(), 0

    def _fresh(self) -> str:
        key = f"{self.tag}-{len(self.used)}"
        self.used.append(key)
        return key

    def pick(self, rng: random.Random) -> str:
        slot = self._slots[rng.randrange(len(self._slots))]
        key: str = slot[0]
        slot[1] += 1
        if slot[1] >= self.ops_per_key:
            slot[0], slot[1] = self._fresh(), 0
        return key


class _KeyedWorkload:
    """What the register and append workloads share: one item per key under rotating keys, values unique
    in the run, and a strongly consistent GetItem as the read."""

    def __init__(self, table: str, tag: str, active_keys: int, ops_per_key: int) -> None:
        self.table = table
        self._keys = _Keys(tag, active_keys, ops_per_key)
        self._counter: dict[int, int] = {}

    def _unique(self, client: int) -> str:
        n = self._counter.get(client, 0) + 1
        self._counter[client] = n
        return f"{client}.{n}"

    def _note_indeterminate(self, request: Request, answer: Answer) -> None:
        """A write that may or may not have happened counts toward retiring its key (see ``_Keys``)."""
        if answer.outcome is Outcome.INFO and request.kind is not OpKind.READ:
            self._keys.indeterminate_write(request.key)

    def keys(self) -> list[str]:
        return list(self._keys.used)

    def final_read(self, key: str) -> Request:
        return Request(OpKind.READ, key, None, "GetItem",
                       {"TableName": self.table, "Key": _key(key), "ConsistentRead": True})


class RegisterWorkload(_KeyedWorkload):
    name = "register"
    ATTR = "v"

    def __init__(self, table: str, tag: str, active_keys: int = 3, ops_per_key: int = 150) -> None:
        super().__init__(table, tag, active_keys, ops_per_key)
        self._last_seen: dict[tuple[int, str], str | None] = {}

    def next_request(self, client: int, rng: random.Random) -> Request:
        key = self._keys.pick(rng)
        roll = rng.random()
        if roll < 0.5:
            return self.final_read(key)
        value = self._unique(client)
        item = {**_key(key), self.ATTR: {"S": value}}
        if roll < 0.75:
            return Request(OpKind.WRITE, key, value, "PutItem", {"TableName": self.table, "Item": item})
        expected = self._last_seen.get((client, key))
        body: dict[str, Any] = {"TableName": self.table, "Item": item, "ExpressionAttributeNames": {"#v": self.ATTR}}
        if expected is None:
            body["ConditionExpression"] = "attribute_not_exists(#v)"
        else:
            body["ConditionExpression"] = "#v = :expected"
            body["ExpressionAttributeValues"] = {":expected": {"S": expected}}
        return Request(OpKind.CAS, key, [expected, value], "PutItem", body)

    def interpret(self, client: int, request: Request, answer: Answer) -> Interpreted:
        self._note_indeterminate(request, answer)
        if request.kind is OpKind.READ:
            if not answer.ok:
                return _passthrough(answer)
            item = (answer.body or {}).get("Item")
            value = item.get(self.ATTR, {}).get("S") if item else None
            self._last_seen[(client, request.key)] = value
            return Interpreted(Outcome.OK, value)
        if request.kind is OpKind.CAS:
            if answer.ok:
                self._last_seen[(client, request.key)] = request.value[1]
                return Interpreted(Outcome.OK, True)
            if answer.error == "ConditionalCheckFailedException":
                return Interpreted(Outcome.OK, False, answer.error)
            return _passthrough(answer)
        if answer.ok:
            self._last_seen[(client, request.key)] = request.value
        return _passthrough(answer)


class AppendWorkload(_KeyedWorkload):
    name = "append"
    ATTR = "l"

    def __init__(self, table: str, tag: str, active_keys: int = 3, ops_per_key: int = 120) -> None:
        super().__init__(table, tag, active_keys, ops_per_key)

    def next_request(self, client: int, rng: random.Random) -> Request:
        key = self._keys.pick(rng)
        if rng.random() < 0.5:
            return self.final_read(key)
        element = self._unique(client)
        body = {"TableName": self.table, "Key": _key(key),
                "UpdateExpression": "SET #l = list_append(if_not_exists(#l, :empty), :x)",
                "ExpressionAttributeNames": {"#l": self.ATTR},
                "ExpressionAttributeValues": {":empty": {"L": []}, ":x": {"L": [{"S": element}]}}}
        return Request(OpKind.APPEND, key, element, "UpdateItem", body)

    def interpret(self, client: int, request: Request, answer: Answer) -> Interpreted:
        self._note_indeterminate(request, answer)
        if request.kind is OpKind.READ and answer.ok:
            item = (answer.body or {}).get("Item")
            listed = item.get(self.ATTR, {}).get("L") if item else None
            return Interpreted(Outcome.OK, [e.get("S") for e in listed] if listed is not None else None)
        return _passthrough(answer)


class BankWorkload:
    """Accounts ``<tag>-acct<i>`` start with ``initial_balance`` each; the history's key is ``*``."""

    name = "bank"
    ATTR = "bal"

    def __init__(self, table: str, tag: str, accounts: int = 5, initial_balance: int = 100) -> None:
        self.table = table
        self.accounts = [f"{tag}-acct{i}" for i in range(accounts)]
        self.initial_balance = initial_balance

    @property
    def total(self) -> int:
        return self.initial_balance * len(self.accounts)

    def setup_requests(self) -> list[tuple[str, dict[str, Any]]]:
        return [("PutItem", {"TableName": self.table,
                             "Item": {**_key(a), self.ATTR: {"N": str(self.initial_balance)}}})
                for a in self.accounts]

    def next_request(self, client: int, rng: random.Random) -> Request:
        if rng.random() < 0.4:
            return self.final_read("*")
        src, dst = rng.sample(self.accounts, 2)
        amount = rng.randint(1, 20)
        body = {"TransactItems": [
            {"Update": {"TableName": self.table, "Key": _key(src), "UpdateExpression": "SET #b = #b - :a",
                        "ConditionExpression": "#b >= :a", "ExpressionAttributeNames": {"#b": self.ATTR},
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
            {"Update": {"TableName": self.table, "Key": _key(dst), "UpdateExpression": "SET #b = #b + :a",
                        "ExpressionAttributeNames": {"#b": self.ATTR},
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}}}}]}
        return Request(OpKind.TRANSFER, "*", [src, dst, amount], "TransactWriteItems", body)

    def interpret(self, client: int, request: Request, answer: Answer) -> Interpreted:
        if request.kind is OpKind.READ_ALL and answer.ok:
            responses = (answer.body or {}).get("Responses", [])
            balances = {}
            for account, response in zip(self.accounts, responses, strict=False):
                item = response.get("Item") if isinstance(response, dict) else None
                if item:
                    balances[account] = int(item[self.ATTR]["N"])
            if len(balances) != len(self.accounts):
                return Interpreted(Outcome.OK, balances, "missing accounts")
            return Interpreted(Outcome.OK, balances)
        return _passthrough(answer)

    def keys(self) -> list[str]:
        return ["*"]

    def final_read(self, key: str) -> Request:
        body = {"TransactItems": [{"Get": {"TableName": self.table, "Key": _key(a)}} for a in self.accounts]}
        return Request(OpKind.READ_ALL, "*", None, "TransactGetItems", body)


def make_workload(name: str, table: str, tag: str, clients: int = 5) -> RegisterWorkload | AppendWorkload | BankWorkload:
    # About two clients per active key: enough contention to matter, few enough overlapping operations
    # per key for the checker's search.
    active_keys = max(3, (clients + 1) // 2)
    if name == "register":
        return RegisterWorkload(table, tag, active_keys=active_keys)
    if name == "append":
        return AppendWorkload(table, tag, active_keys=active_keys)
    if name == "bank":
        return BankWorkload(table, tag)
    raise ValueError(f"unknown workload {name!r}: choose from {', '.join(WORKLOADS)}")


def unsupported(answer: Answer) -> bool:
    """Did the endpoint say it does not implement the operation (as opposed to failing it)?"""
    return answer.error == "UnknownOperationException" or (
        answer.error == "ValidationException" and "does not support" in answer.message)
