"""The router's read of every partition (a Query on a GSI): answers must cover the hash space exactly once.
A partition that split after the router's map was made answers for half its old range; the round is then
asked again with the newer map. The storage nodes are stood in for by a fake ``_route``."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo.errors import ServiceUnavailableException
from dynamo.keycodec import HASH_SPACE
from router.cluster import BackendConfig, ClusterBackend

HALF = HASH_SPACE // 2
MID = HALF // 2
SPEC = {"TableName": "t", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}


def a_map(version: int, ranges: dict[int, tuple[int, int]]) -> dict[str, Any]:
    return {"version": version, "nodes": {"sn-a1": {"az": "a"}},
            "tables": {"t": {"table_id": 3, "status": "ACTIVE", "spec": SPEC, "partitions": list(ranges)}},
            "partitions": {str(pid): {"table_id": 3, "lo": str(lo), "hi": str(hi), "replicas": ["sn-a1"]}
                           for pid, (lo, hi) in ranges.items()}}


BEFORE = {1: (0, HALF), 2: (HALF, HASH_SPACE)}
AFTER = {3: (0, MID), 4: (MID, HALF), 2: (HALF, HASH_SPACE)}


class FakeCluster:
    """Partitions as they really are now; a request for a hash goes to the partition that holds it (as
    ``_route`` ends up doing after a ``stale`` answer), which installs the newer map in the router."""

    def __init__(self, backend: ClusterBackend, actual: dict[int, tuple[int, int]], newer: dict[str, Any]) -> None:
        self.backend = backend
        self.actual = actual
        self.newer = newer
        self.asked: list[int] = []

    async def route(self, op: str, table: Any, key: Any, request: Any, *, strong: bool, write: bool,
                    hash64: int, extra: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(hash64)
        ((pid, (lo, hi)),) = [(pid, r) for pid, r in self.actual.items() if r[0] <= hash64 < r[1]]
        held = {part.partition_id for part in table.partitions}
        if pid not in held:
            self.backend.install_map(self.newer)  # what the stale answer's refresh brings
        return {"Cands": [], "More": False, "Lo": str(lo), "Hi": str(hi), "pid": pid}


async def no_refresh(version: int, deadline: float) -> None:
    return None


@pytest.mark.parametrize("held, actual, asked", [
    (BEFORE, BEFORE, 2),  # the map is current: one round
    (BEFORE, AFTER, 5),  # partition 1 split: [0, MID) answered alone, so a second round of three
    (AFTER, AFTER, 3),
])
async def test_every_partition_covers_the_hash_space_once(held: dict[int, tuple[int, int]],
                                                          actual: dict[int, tuple[int, int]], asked: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ClusterBackend(object(), ["cp-a"], BackendConfig(max_attempts=4))  # type: ignore[arg-type]
    assert backend.install_map(a_map(1, held))
    fake = FakeCluster(backend, actual, a_map(2, actual))
    monkeypatch.setattr(backend, "_route", fake.route)
    monkeypatch.setattr(backend, "refresh_map", no_refresh)
    table = backend.routing.table("t")
    assert table is not None
    answers = await backend._every_partition("IndexQuery", table, {}, {})
    assert sorted(answer["pid"] for answer in answers) == sorted(actual)
    assert len(fake.asked) == asked


async def test_gives_up_when_the_answers_never_cover(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ClusterBackend(object(), ["cp-a"], BackendConfig(max_attempts=3))  # type: ignore[arg-type]
    assert backend.install_map(a_map(1, BEFORE))

    async def half(op: str, table: Any, key: Any, request: Any, **kw: Any) -> dict[str, Any]:
        return {"Cands": [], "More": False, "Lo": "0", "Hi": str(MID)}  # never the rest

    monkeypatch.setattr(backend, "_route", half)
    monkeypatch.setattr(backend, "refresh_map", no_refresh)
    table = backend.routing.table("t")
    assert table is not None
    with pytest.raises(ServiceUnavailableException):
        await backend._every_partition("IndexQuery", table, {}, {})
