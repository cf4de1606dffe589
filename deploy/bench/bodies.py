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
    def __init__(self, table: str, items_per_key: int = 1, consistent: bool = False) -> None:
        if not _TABLE_NAME.match(table):
            raise ValueError(f"table name {table!r}: use 3-255 characters of A-Z a-z 0-9 _ . -")
        assert items_per_key >= 1
        self.table = table
        self.items_per_key = items_per_key
        self.consistent = consistent
        self._table_json = f'{{"TableName":"{table}"'
        self._consistent_json = "true" if consistent else "false"

    def position(self, record: int) -> tuple[str, int]:
        """The (partition key, sort key) of a record."""
        group, sort = divmod(record, self.items_per_key)
        return key_name(group), sort

    def _key(self, record: int) -> str:
        pk, sk = self.position(record)
        return f'{{"pk":{{"S":"{pk}"}},"sk":{{"N":"{sk}"}}}}'

    def item_json(self, record: int, value: str) -> str:
        pk, sk = self.position(record)
        return f'{{"pk":{{"S":"{pk}"}},"sk":{{"N":"{sk}"}},"v":{{"S":"{value}"}}}}'

    def item_size_bytes(self, record: int, value: str) -> int:
        """DynamoDB's size of the item: names plus values (a number counted as its digits, roughly)."""
        pk, sk = self.position(record)
        return len("pk") + len(pk) + len("sk") + len(str(sk)) + 1 + len("v") + len(value)

    def get_item(self, record: int) -> bytes:
        return f'{self._table_json},"Key":{self._key(record)},"ConsistentRead":{self._consistent_json}}}'.encode()

    def put_item(self, record: int, value: str) -> bytes:
        return f'{self._table_json},"Item":{self.item_json(record, value)}}}'.encode()

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

    def batch_write(self, records: range, values: list[str]) -> bytes:
        puts = ",".join(f'{{"PutRequest":{{"Item":{self.item_json(r, values[r % len(values)])}}}}}'
                        for r in records)
        return f'{{"RequestItems":{{"{self.table}":[{puts}]}}}}'.encode()

    def create_table(self) -> bytes:
        return orjson.dumps({
            "TableName": self.table,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "sk", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "BillingMode": "PAY_PER_REQUEST",
        })

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
