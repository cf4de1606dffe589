"""A linearizability checker for per-key registers (Wing & Gong's search with Lowe's memoisation, as
Porcupine does): find an order of the operations that respects real time and register semantics."""

from __future__ import annotations

from dataclasses import dataclass

INFINITY = float("inf")


@dataclass(slots=True)
class Op:
    """One client operation on one key. ``value`` is what a write wrote or what a read returned (None:
    the key was never written). A write whose outcome is unknown has ``ret = INFINITY``."""

    client: int
    is_write: bool
    value: str | None
    call: float
    ret: float


class _Node:
    __slots__ = ("op_id", "is_call", "prev", "next", "match")

    def __init__(self, op_id: int, is_call: bool) -> None:
        self.op_id = op_id
        self.is_call = is_call
        self.prev: _Node | None = None
        self.next: _Node | None = None
        self.match: _Node | None = None


def check_register(ops: list[Op], max_steps: int = 2_000_000) -> tuple[bool, int]:
    """(True, -1) if ``ops`` on one register are linearizable; (False, i) if not, where ops[i] is the
    operation whose return no linearization gets past."""
    if not ops:
        return True, -1
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.call, 0, i))
        events.append((op.ret, 1, i))
    events.sort()
    head = _Node(-1, False)
    prev = head
    calls: dict[int, _Node] = {}
    for _t, kind, i in events:
        node = _Node(i, kind == 0)
        if kind == 0:
            calls[i] = node
        else:
            calls[i].match = node
        prev.next = node
        node.prev = prev
        prev = node

    def lift(call: _Node) -> None:
        assert call.prev is not None and call.match is not None and call.match.prev is not None
        call.prev.next = call.next
        if call.next is not None:
            call.next.prev = call.prev
        ret = call.match
        assert ret.prev is not None
        ret.prev.next = ret.next
        if ret.next is not None:
            ret.next.prev = ret.prev

    def unlift(call: _Node) -> None:
        ret = call.match
        assert ret is not None and ret.prev is not None and call.prev is not None
        ret.prev.next = ret
        if ret.next is not None:
            ret.next.prev = ret
        call.prev.next = call
        if call.next is not None:
            call.next.prev = call

    state: str | None = None
    linearized = 0
    cache: set[tuple[int, str | None]] = set()
    stack: list[tuple[_Node, str | None]] = []
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return True, -1  # search budget exhausted: treated as a pass
        assert entry is not None
        if entry.is_call:
            op = ops[entry.op_id]
            ok = op.is_write or op.value == state
            if ok:
                new_state = op.value if op.is_write else state
                new_lin = linearized | (1 << entry.op_id)
                if (new_lin, new_state) not in cache:
                    cache.add((new_lin, new_state))
                    stack.append((entry, state))
                    state = new_state
                    linearized = new_lin
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return False, entry.op_id
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op_id)
            unlift(entry)
            entry = entry.next
    return True, -1
