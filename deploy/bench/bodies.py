"""Request bodies for the benchmark's DynamoDB calls, formatted from fixed templates.

Every key and value the benchmark makes is ASCII letters and digits and the table name is checked once,
so plain string formatting makes valid JSON with no escaping and no per-request dict building or
serialiser call. The table has a string hash key ``pk`` and a number range key ``sk``: record ``r`` lives
at ``pk = key_name(r // items_per_key)``, ``sk = r % items_per_key`` (one item per partition key for the
YCSB workloads, 10 for ``query``, 100 for workload E's short scans).
"""

from __future__ import annotations

import random
import re
import string
from typing import Any

import orjson

from deploy.bench.keys import key_name

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_VALUE_ALPHABET = string.ascii_letters + string.digits


def value_pool(rng: random.Random, value_bytes: int, size: int = 256) -> list[str]:
    """``size`` random values of ``value_bytes`` ASCII characters; operations pick from them."""
    return ["".join(rng.choices(_VALUE_ALPHABET, k=value_bytes)) for _ in range(size)]


class Bodies:
    def __init__(self, table: str, items_per_key: int = 1, consistent: bool = False, index_group: int = 0) -> None:
        if not _TABLE_NAME.match(table):
            raise ValueError(f"table name {table!r}: use 3-255 characters of A-Z a-z 0-9 _ . -")
        assert items_per_key >= 1 and index_group >= 0
        self.table = table
        self.items_per_key = items_per_key
        self.consistent = consistent
        self.index_group = index_group
        self._table_json = f'{{"TableName":"{table}"'
        self._consistent_json = "true" if consistent else "false"

    def position(self, record: int) -> tuple[str, int]:
        """The (partition key, sort key) of a record."""
        group, sort = divmod(record, self.items_per_key)
        return key_name(group), sort

    def _key(self, record: int) -> str:
        pk, sk = self.position(record)
        return f'{{"pk":{{"S":"{pk}"}},"sk":{{"N":"{sk}"}}}}'

    def index_key(self, record: int) -> str:
        """The record's GSI key (``index_group`` consecutive records share it)."""
        return f"g{record // self.index_group}"

    def item_json(self, record: int, value: str) -> str:
        pk, sk = self.position(record)
        indexed = f',"g":{{"S":"{self.index_key(record)}"}}' if self.index_group else ""
        return f'{{"pk":{{"S":"{pk}"}},"sk":{{"N":"{sk}"}},"v":{{"S":"{value}"}}{indexed}}}'

    def item_size_bytes(self, record: int, value: str) -> int:
        """DynamoDB's size of the item: names plus values (a number counted as its digits, roughly)."""
        pk, sk = self.position(record)
        indexed = len("g") + len(self.index_key(record)) if self.index_group else 0
        return len("pk") + len(pk) + len("sk") + len(str(sk)) + 1 + len("v") + len(value) + indexed

    def get_item(self, record: int) -> bytes:
        return f'{self._table_json},"Key":{self._key(record)},"ConsistentRead":{self._consistent_json}}}'.encode()

    def put_item(self, record: int, value: str) -> bytes:
        return f'{self._table_json},"Item":{self.item_json(record, value)}}}'.encode()

    def transact_put(self, first: int, second: int, value: str) -> bytes:
        puts = ",".join(f'{{"Put":{self._table_json},"Item":{self.item_json(r, value)}}}}}' for r in (first, second))
        return f'{{"TransactItems":[{puts}]}}'.encode()

    def update_item(self, record: int, value: str) -> bytes:
        return (f'{self._table_json},"Key":{self._key(record)},"UpdateExpression":"SET v = :v",'
                f'"ExpressionAttributeValues":{{":v":{{"S":"{value}"}}}}}}').encode()

    def query(self, record: int, limit: int | None = None, from_record: bool = False) -> bytes:
        """All items of the record's partition key, or (``from_record``) those from the record on, in order."""
        pk, sk = self.position(record)
        if from_record:
            condition = '"KeyConditionExpression":"pk = :p AND sk >= :s"'
            values = f'"ExpressionAttributeValues":{{":p":{{"S":"{pk}"}},":s":{{"N":"{sk}"}}}}'
        else:
            condition = '"KeyConditionExpression":"pk = :p"'
            values = f'"ExpressionAttributeValues":{{":p":{{"S":"{pk}"}}}}'
        limit_json = f',"Limit":{limit}' if limit is not None else ""
        return (f'{self._table_json},{condition},{values}{limit_json},'
                f'"ConsistentRead":{self._consistent_json}}}').encode()

    def query_index(self, record: int) -> bytes:
        """The items sharing the record's GSI key (eventually consistent: a GSI allows nothing else)."""
        return (f'{self._table_json},"IndexName":"by_g","KeyConditionExpression":"g = :g",'
                f'"ExpressionAttributeValues":{{":g":{{"S":"{self.index_key(record)}"}}}}}}').encode()

    def batch_write(self, records: range, values: list[str]) -> bytes:
        puts = ",".join(f'{{"PutRequest":{{"Item":{self.item_json(r, values[r % len(values)])}}}}}'
                        for r in records)
        return f'{{"RequestItems":{{"{self.table}":[{puts}]}}}}'.encode()

    def create_table(self) -> bytes:
        spec: dict[str, Any] = {
            "TableName": self.table,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "sk", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.index_group:
            spec["AttributeDefinitions"].append({"AttributeName": "g", "AttributeType": "S"})
            spec["GlobalSecondaryIndexes"] = [{"IndexName": "by_g", "Projection": {"ProjectionType": "ALL"},
                                               "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}]
        return orjson.dumps(spec)

    def table_only(self) -> bytes:
        """The body of DescribeTable and DeleteTable."""
        return f"{self._table_json}}}".encode()

    @staticmethod
    def unprocessed(reply: dict[str, Any]) -> bytes | None:
        """A BatchWriteItem body resending what the reply left unprocessed, or None when all were written."""
        left = reply.get("UnprocessedItems") or {}
        if not any(left.values()):
            return None
        return orjson.dumps({"RequestItems": left})
