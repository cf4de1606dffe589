"""The benchmark's own table: (re)create it PAY_PER_REQUEST, wait until ACTIVE, load records in parallel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from deploy.bench.bodies import Bodies
from deploy.bench.client import Client, error_name

BATCH_ITEMS = 25  # BatchWriteItem's limit
MAX_BATCH_TRIES = 30
RETRYABLE = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
             "InternalServerError", "ServiceUnavailable", "LimitExceededException"}
POLL_S = 0.1


class LoadError(Exception):
    """The table could not be made ready or loaded."""


async def _call_ok(client: Client, target: str, body: bytes) -> dict[str, object]:
    status, reply = await client.call(target, body)
    if status != 200:
        raise LoadError(f"{target} answered HTTP {status}: {reply[:300].decode(errors='replace')}")
    loaded = orjson.loads(reply) if reply else {}
    assert isinstance(loaded, dict)
    return loaded


async def _table_status(client: Client, bodies: Bodies) -> str | None:
    """The table's status, or None when it does not exist."""
    status, reply = await client.call("DescribeTable", bodies.table_only())
    if status == 200:
        table = orjson.loads(reply).get("Table") or {}
        return str(table.get("TableStatus", "ACTIVE"))
    if error_name(status, reply) == "ResourceNotFoundException":
        return None
    raise LoadError(f"DescribeTable answered HTTP {status}: {reply[:300].decode(errors='replace')}")


async def _wait(client: Client, bodies: Bodies, want: str | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (state := await _table_status(client, bodies)) != want:
        if time.monotonic() > deadline:
            raise LoadError(f"table {bodies.table} is {state}, not {want or 'gone'}, after {timeout_s:.0f} s")
        await asyncio.sleep(POLL_S)


async def prepare_table(client: Client, bodies: Bodies, timeout_s: float = 120.0) -> None:
    """Drop the table if it exists, create it empty and wait until it is ACTIVE."""
    state = await _table_status(client, bodies)
    if state is not None:
        if state != "DELETING":
            await _wait(client, bodies, "ACTIVE", timeout_s)
            await _call_ok(client, "DeleteTable", bodies.table_only())
        await _wait(client, bodies, None, timeout_s)
    await _call_ok(client, "CreateTable", bodies.create_table())
    await _wait(client, bodies, "ACTIVE", timeout_s)


async def _write_batch(client: Client, body: bytes) -> None:
    delay_s = 0.01
    for _ in range(MAX_BATCH_TRIES):
        status, reply = await client.call("BatchWriteItem", body)
        if status == 200:
            again = Bodies.unprocessed(orjson.loads(reply))
            if again is None:
                return
            body = again
        elif error_name(status, reply) not in RETRYABLE:
            raise LoadError(f"BatchWriteItem answered HTTP {status}: {reply[:300].decode(errors='replace')}")
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, 1.0)
    raise LoadError(f"BatchWriteItem left items unprocessed after {MAX_BATCH_TRIES} tries")


async def load_records(clients: list[Client], bodies: Bodies, records: int, values: list[str],
                       on_progress: Callable[[int], None] | None = None) -> None:
    """Write records 0..records-1 with BatchWriteItem, one batch in flight per client."""
    batches = iter(range(0, records, BATCH_ITEMS))

    async def worker(client: Client) -> None:
        for start in batches:
            chunk = range(start, min(start + BATCH_ITEMS, records))
            await _write_batch(client, bodies.batch_write(chunk, values))
            if on_progress is not None:
                on_progress(len(chunk))

    try:
        async with asyncio.TaskGroup() as group:  # one failed batch stops the others
            for client in clients:
                group.create_task(worker(client))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
