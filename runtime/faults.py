"""The fault table: links between nodes (or whole AZs) cut or slowed on purpose, without root.

The table is a JSON file in the data folder (``faults.json``). `ddb` writes it through ``FaultTable``;
every process's transport reads it through ``FaultWatcher``, which checks the file's signature at most
once per ``poll_ms`` and re-reads it only when it changed. Rules are applied by the SENDER of each
message, so a one-way cut from A to B drops A's messages to B (and B's responses to A's requests are
still governed by the B-to-A direction).

An endpoint is a node name (``sn-b2``), a whole AZ (``az-b``) or everyone (``*``).
"""

from __future__ import annotations

import builtins
import enum
import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.config import ConfigError, role_of

FAULTS_VERSION = 1
ANY = "*"


class FaultError(ValueError):
    """A fault rule or the fault file is malformed."""


class RuleKind(enum.StrEnum):
    DROP = "drop"  # a partition: messages are lost
    DELAY = "delay"  # a slow link: messages arrive delay_ms late


@dataclass(frozen=True, slots=True)
class FaultRule:
    kind: RuleKind
    a: str
    b: str
    oneway: bool = False  # only traffic from a to b; otherwise both directions
    delay_ms: int = 0

    def __post_init__(self) -> None:
        for endpoint in (self.a, self.b):
            check_endpoint(endpoint)
        if self.kind is RuleKind.DELAY and (isinstance(self.delay_ms, bool) or not isinstance(self.delay_ms, int)
                                            or self.delay_ms <= 0):
            raise FaultError(f"a slow link needs a positive delay in ms, not {self.delay_ms!r}")
        if self.kind is RuleKind.DROP and self.delay_ms != 0:
            raise FaultError("a partition rule has no delay")

    def covers(self, src: str, src_az: str | None, dst: str, dst_az: str | None) -> bool:
        forward = _matches(self.a, src, src_az) and _matches(self.b, dst, dst_az)
        if forward or self.oneway:
            return forward
        return _matches(self.b, src, src_az) and _matches(self.a, dst, dst_az)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind.value, "a": self.a, "b": self.b, "oneway": self.oneway}
        if self.kind is RuleKind.DELAY:
            out["delay_ms"] = self.delay_ms
        return out

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        if not isinstance(data, dict):
            raise FaultError(f"a fault rule is a JSON object, not {data!r}")
        try:
            return cls(kind=RuleKind(data["kind"]), a=data["a"], b=data["b"],
                       oneway=bool(data.get("oneway", False)), delay_ms=data.get("delay_ms", 0))
        except (KeyError, ValueError, TypeError) as exc:
            raise FaultError(f"bad fault rule {data!r}: {exc}") from None

    def describe(self) -> str:
        arrow = "->" if self.oneway else "<->"
        what = "cut" if self.kind is RuleKind.DROP else f"slow +{self.delay_ms} ms"
        return f"{self.a} {arrow} {self.b}: {what}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the sender does with a message: drop it, or hold it back ``delay_ms`` first."""

    drop: bool = False
    delay_ms: int = 0


PASS = Verdict()


def check_endpoint(endpoint: str) -> None:
    if endpoint == ANY:
        return
    if endpoint.startswith("az-"):
        if len(endpoint) == 4 and endpoint[3].islower():
            return
        raise FaultError(f"bad AZ endpoint {endpoint!r}: write az-<letter>, e.g. az-b")
    try:
        role_of(endpoint)
    except ConfigError:
        raise FaultError(f"bad endpoint {endpoint!r}: a node name (sn-b2), an AZ (az-b) or *") from None


def _matches(pattern: str, node: str, az: str | None) -> bool:
    if pattern == ANY or pattern == node:
        return True
    return az is not None and pattern == f"az-{az}"


def judge(rules: Iterable[FaultRule], src: str, src_az: str | None, dst: str, dst_az: str | None) -> Verdict:
    """The fate of a message from src to dst: dropped if any cut covers the link, else delayed by the
    largest matching slow rule."""
    delay_ms = 0
    for rule in rules:
        if rule.covers(src, src_az, dst, dst_az):
            if rule.kind is RuleKind.DROP:
                return Verdict(drop=True)
            delay_ms = max(delay_ms, rule.delay_ms)
    return Verdict(delay_ms=delay_ms) if delay_ms else PASS


def encode(rules: Iterable[FaultRule]) -> bytes:
    body = {"version": FAULTS_VERSION, "rules": [r.to_json() for r in rules]}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2)


def decode(raw: bytes) -> tuple[FaultRule, ...]:
    if not raw.strip():
        return ()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FaultError(f"fault file is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != FAULTS_VERSION or not isinstance(data.get("rules"), list):
        raise FaultError(f"fault file must be {{'version': {FAULTS_VERSION}, 'rules': [...]}}")
    return tuple(FaultRule.from_json(r) for r in data["rules"])


class FaultTable:
    """The writer's side (`ddb`): edits the file atomically under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def list(self) -> list[FaultRule]:
        try:
            return list(decode(self.path.read_bytes()))
        except FileNotFoundError:
            return []

    def add_partition(self, a: str, b: str, oneway: bool = False) -> FaultRule:
        return self._add(FaultRule(RuleKind.DROP, a, b, oneway=oneway))

    def add_slow(self, a: str, b: str, ms: int, oneway: bool = False) -> FaultRule:
        return self._add(FaultRule(RuleKind.DELAY, a, b, oneway=oneway, delay_ms=ms))

    def heal(self, a: str | None = None, b: str | None = None) -> builtins.list[FaultRule]:
        """Remove every rule, or only those between a and b (either order). Returns what was removed."""
        with self._locked() as rules:
            removed = [r for r in rules if a is None or {r.a, r.b} == {a, b if b is not None else a}]
            rules[:] = [r for r in rules if r not in removed]
        return removed

    def _add(self, rule: FaultRule) -> FaultRule:
        with self._locked() as rules:
            if rule not in rules:
                rules.append(rule)
        return rule

    @contextmanager
    def _locked(self) -> Iterator[builtins.list[FaultRule]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rules = self.list()
            yield rules
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(encode(rules))
            os.replace(tmp, self.path)  # a new inode: readers notice the change even within one mtime tick


class FaultWatcher:
    """The reader's side (every process): rules kept in memory, refreshed when the file changes.

    ``generation`` increases on every change, so callers may cache verdicts and recompute only then.
    """

    def __init__(self, path: Path | None, node_azs: dict[str, str | None], poll_ms: float = 100.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.node_azs = node_azs
        self.poll_ms = poll_ms
        self.clock = clock
        self.rules: tuple[FaultRule, ...] = ()
        self.generation = 0
        self.last_error: str | None = None
        self._signature: tuple[int, int, int] | None = None
        self._next_check_ms = float("-inf")

    def refresh(self) -> int:
        """Re-read the file if due and changed; cheap (one clock read) when not due. Returns generation."""
        now = self.clock.monotonic_ms()
        if now < self._next_check_ms or self.path is None:
            return self.generation
        self._next_check_ms = now + self.poll_ms
        try:
            st = os.stat(self.path)
            signature: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            signature = None
        if signature == self._signature:
            return self.generation
        self._signature = signature
        try:
            rules = decode(self.path.read_bytes()) if signature else ()
        except (FaultError, OSError) as exc:
            # Keep obeying the last good table: a typo must not silently heal a partition.
            self.last_error = str(exc)
            return self.generation
        self.last_error = None
        if rules != self.rules:
            self.rules = rules
            self.generation += 1
        return self.generation

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        """Install rules directly (in-process tests without a file)."""
        self.rules = tuple(rules)
        self.generation += 1

    def verdict(self, src: str, dst: str) -> Verdict:
        self.refresh()
        if not self.rules:
            return PASS
        return judge(self.rules, src, self.node_azs.get(src), dst, self.node_azs.get(dst))
