"""`ddb verify`'s per-partition check against scripted replica answers: a replica receiving a snapshot is
catching up (waited for, never a checksum mismatch); a partition without 3 live, complete replicas when the
wait ends fails, naming the replica."""

from __future__ import annotations

from typing import Any

import orjson

from deploy.admin import check_partition
from runtime.transport import PeerUnavailable

REPLICAS = ["sn-a1", "sn-b1", "sn-c1"]
PART = {"table_id": 1, "lo": "0", "hi": "10", "replicas": REPLICAS}


def ok(applied: int, checksum: str, receiving: bool = False) -> dict[str, Any]:
    return {"ok": {"applied": applied, "commit": applied, "checksum": checksum, "receiving": receiving}}


class Script:
    """A transport whose replicas answer from per-replica lists (the last answer repeats); an exception in
    the list is raised."""

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.asked: dict[str, int] = dict.fromkeys(answers, 0)

    async def call(self, peer: str, group: str, kind: int, payload: bytes, timeout_ms: float | None = None) -> bytes:
        assert group == "p7" and orjson.loads(payload) == {"op": "checksum"}
        script = self.answers[peer]
        answer = script[min(self.asked[peer], len(script) - 1)]
        self.asked[peer] += 1
        if isinstance(answer, Exception):
            raise answer
        return orjson.dumps(answer)


async def check(answers: dict[str, list[Any]], timeout_s: float = 0.2) -> Any:
    return await check_partition(Script(answers), 7, PART, "t", timeout_s, interval_s=0.01)  # type: ignore[arg-type]


async def test_replicas_at_one_index_with_one_checksum_pass() -> None:
    result = await check({r: [ok(5, "x")] for r in REPLICAS})
    assert result.ok and result.applied == 5 and not result.catching_up


async def test_a_receiving_replica_is_waited_for_not_compared() -> None:
    # Mid-transfer, its applied index may even equal the others' while its checksum is of half a state.
    answers = {"sn-a1": [ok(5, "x")], "sn-b1": [ok(5, "x")],
               "sn-c1": [ok(5, "half", receiving=True), ok(0, "more", receiving=True), ok(5, "x")]}
    result = await check(answers, timeout_s=2.0)
    assert result.ok, result.problem


async def test_a_replica_still_receiving_when_the_wait_ends_fails_naming_it() -> None:
    answers = {"sn-a1": [ok(5, "x")], "sn-b1": [ok(5, "x")], "sn-c1": [ok(5, "half", receiving=True)]}
    result = await check(answers)
    assert not result.ok
    assert "fewer than 3 live, complete replicas" in result.problem and "sn-c1 catching up" in result.problem
    assert "checksums differ" not in result.problem
    assert result.catching_up == ["sn-c1"] and result.to_json()["catching_up"] == ["sn-c1"]


async def test_a_silent_replica_and_a_receiving_one_are_both_named() -> None:
    answers = {"sn-a1": [ok(5, "x")], "sn-b1": [PeerUnavailable("sn-b1", "cannot connect")],
               "sn-c1": [ok(0, "", receiving=True)]}
    result = await check(answers)
    assert not result.ok and "no answer from sn-b1" in result.problem and "sn-c1 catching up" in result.problem


async def test_complete_replicas_that_differ_at_one_index_fail() -> None:
    answers = {"sn-a1": [ok(5, "x")], "sn-b1": [ok(5, "x")], "sn-c1": [ok(5, "y")]}
    result = await check(answers)
    assert not result.ok and result.problem == "checksums differ at applied index 5"


async def test_an_entry_list_that_disagrees_with_its_items_fails_naming_it() -> None:
    def listed(wrong: list[str]) -> dict[str, Any]:
        answer = ok(5, "x")
        answer["ok"]["entry_lists"] = {"checked": 2, "wrong": wrong}
        return answer

    result = await check({"sn-a1": [listed([])], "sn-b1": [listed(["by_g"])], "sn-c1": [ok(5, "x")]})
    assert not result.ok
    assert result.problem == "GSI entry lists disagree with their replica's items: by_g on sn-b1"
    assert (await check({r: [listed([])] for r in REPLICAS})).ok
