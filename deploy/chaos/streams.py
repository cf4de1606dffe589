"""The append workload's stream check: the table's DynamoDB stream, read after the faults healed, must
tell each key's story exactly as the history allows.

Every append adds a unique element, and the stream's view is NEW_IMAGE, so a key's records, in the order
its shard (and the shard's ancestors) hold them, must be lists that each extend the one before by exactly one
element: no record lost, doubled or out of order. Their last list is the key's final value (the final read's
list); it holds every acknowledged append and no append that definitely failed. Indeterminate ones may be
in it or not, like in the history.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from deploy.chaos.checker import FINAL_CLIENT
from deploy.chaos.client import Answer
from deploy.chaos.history import History, OpKind, Outcome

STREAMS_API = "DynamoDBStreams_20120810."
VIEW_TYPE = "NEW_IMAGE"
MAX_PAGES_PER_SHARD = 5_000
PAGE_LIMIT = 1_000


class Caller(Protocol):
    async def call(self, operation: str, request: dict[str, Any], timeout_s: float | None = None,
                   api: str = ...) -> Answer: ...


async def read_stream(client: Caller, table: str, attr: str,
                      deadline_s: float) -> dict[str, list[list[str]]] | str | None:
    """Each key's lists (attribute ``attr`` of its NEW_IMAGEs, REMOVE as an empty list) in stream order,
    shards parents first as DescribeStream lists them; what went wrong; or None if the table has no stream
    (an endpoint without streams). Each request is retried until ``deadline_s`` (``time.monotonic``)."""

    async def ask(operation: str, body: dict[str, Any], api: str = STREAMS_API) -> dict[str, Any]:
        while True:
            answer = await client.call(operation, body, api=api)
            if answer.ok:
                return answer.body or {}
            if time.monotonic() > deadline_s:
                raise _Failed(f"{operation}: {answer.error} {answer.message}".strip())
            await _pause()

    try:
        described = await ask("DescribeTable", {"TableName": table}, api="DynamoDB_20120810.")
        arn = described["Table"].get("LatestStreamArn")
        if arn is None:
            return None
        shards: list[dict[str, Any]] = []
        start: str | None = None
        while True:
            page = (await ask("DescribeStream", {"StreamArn": arn, **({"ExclusiveStartShardId": start} if start else {})}))
            shards += page["StreamDescription"]["Shards"]
            start = page["StreamDescription"].get("LastEvaluatedShardId")
            if start is None:
                break
        lists: dict[str, list[list[str]]] = {}
        for shard in shards:
            got = await ask("GetShardIterator", {"StreamArn": arn, "ShardId": shard["ShardId"],
                                                 "ShardIteratorType": "TRIM_HORIZON"})
            iterator: str | None = got["ShardIterator"]
            for _ in range(MAX_PAGES_PER_SHARD):
                assert iterator is not None
                page = await ask("GetRecords", {"ShardIterator": iterator, "Limit": PAGE_LIMIT})
                for record in page["Records"]:
                    body = record["dynamodb"]
                    key = next(iter(body["Keys"].values()))["S"]
                    image = body.get("NewImage") or {}
                    listed = (image.get(attr) or {}).get("L") or []
                    lists.setdefault(key, []).append([one.get("S") for one in listed])
                iterator = page.get("NextShardIterator")
                if iterator is None or not page["Records"]:
                    break
            else:
                return f"shard {shard['ShardId']} still had records after {MAX_PAGES_PER_SHARD} pages"
        return lists
    except _Failed as exc:
        return f"could not read the stream: {exc}"


class _Failed(Exception):
    pass


async def _pause() -> None:
    await asyncio.sleep(0.2)


def check_stream(history: History, lists: dict[str, list[list[str]]]) -> list[str]:
    """What the stream gets wrong about the history's keys (empty: nothing)."""
    problems: list[str] = []
    for key, ops in sorted(history.by_key().items()):
        appends = [op for op in ops if op.kind is OpKind.APPEND]
        if not appends:
            continue
        known = {op.value for op in appends}
        acked = {op.value for op in appends if op.outcome is Outcome.OK}
        failed = {op.value for op in appends if op.outcome is Outcome.FAIL}
        story = lists.get(key, [])
        previous: list[str] = []
        for i, listed in enumerate(story):
            if listed[:-1] != previous or not listed or listed[-1] in previous:
                problems.append(f"key {key}: record {i + 1} of {len(story)} is {listed[-3:]}... after "
                                f"{previous[-3:]}...: not one append after the record before it")
                break
            if listed[-1] not in known:
                problems.append(f"key {key}: record {i + 1} appends {listed[-1]!r}, which no client appended")
                break
            previous = listed
        final = set(previous)
        if acked - final:
            problems.append(f"key {key}: {len(acked - final)} acknowledged append(s) missing from the stream, "
                            f"e.g. {sorted(acked - final)[0]!r}")
        if failed & final:
            problems.append(f"key {key}: the stream holds {sorted(failed & final)[0]!r}, an append that failed")
        finals = [op for op in ops if op.client == FINAL_CLIENT and op.kind is OpKind.READ and op.outcome is Outcome.OK]
        if finals and (finals[-1].result or []) != previous:
            problems.append(f"key {key}: the stream ends at {len(previous)} elements, the final read found "
                            f"{len(finals[-1].result or [])}")
    return problems
