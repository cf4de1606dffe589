"""Per-partition admission control: DynamoDB's hard limit of ``partition_max_wcu`` write units and
``partition_max_rcu`` read units per second on every partition.

Each partition replica that serves a request admits it from one of two token buckets (write units, read
units), refilled at the limit per second and holding at most ``burst_s`` seconds of unused capacity. Writes
and strongly consistent reads are served (so admitted) by the leader, eventually consistent reads by the
replica the router picked. A split starts two children, each with its own full buckets: the range's capacity
doubles, which is what a split by heat is for.

The size of a request, and so its units, is only known once it has read or decided: a request is admitted
while its bucket is positive, charged an estimate at once (the minimum it can cost, so concurrent requests
cannot all slip in on the same positive bucket), and charged the rest of its actual units when done. The
bucket may go negative: that debt throttles the requests that follow until the refill pays it off. Over any
run the units admitted stay within ``rate × time + burst`` plus the last request's own units (and, while
requests are in flight, the difference between their estimates and their actual units).

A throttled request is not served at all (a write is not proposed), and the storage node says so; the
router answers DynamoDB's throttling error, which SDKs retry.

Pure: the time is passed in (monotonic seconds).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

from dynamo.capacity import READ_UNIT_BYTES, WRITE_UNIT_BYTES, read_units, write_units
from dynamo.size import item_size


class UnitKind(enum.StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    write_units_per_s: float
    read_units_per_s: float
    burst_s: float

    def __post_init__(self) -> None:
        assert self.write_units_per_s > 0 and self.read_units_per_s > 0 and self.burst_s > 0, self


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``rate_per_s × burst_s`` held; starts full."""

    __slots__ = ("rate_per_s", "capacity", "tokens", "updated_s")

    def __init__(self, rate_per_s: float, burst_s: float, now_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = rate_per_s * burst_s
        self.tokens = self.capacity
        self.updated_s = now_s

    def _refill(self, now_s: float) -> None:
        if now_s > self.updated_s:  # a clock that stands still (or a caller's older reading) adds nothing
            self.tokens = min(self.capacity, self.tokens + (now_s - self.updated_s) * self.rate_per_s)
            self.updated_s = now_s

    def take(self, now_s: float, units: float) -> bool:
        """Admit (and charge ``units``) if the bucket is positive; False, charging nothing, if it is not."""
        self._refill(now_s)
        if self.tokens <= 0:
            return False
        self.tokens -= units
        return True

    def charge(self, now_s: float, units: float) -> None:
        """Charge (or, negative, refund) units of a request already admitted: the bucket may go into debt."""
        self._refill(now_s)
        self.tokens = min(self.capacity, self.tokens - units)

    def level(self, now_s: float) -> float:
        self._refill(now_s)
        return self.tokens


class PartitionAdmission:
    """The two buckets of one partition replica, and how many requests each throttled."""

    __slots__ = ("buckets", "throttled")

    def __init__(self, limits: AdmissionLimits, now_s: float) -> None:
        self.buckets = {
            UnitKind.WRITE: TokenBucket(limits.write_units_per_s, limits.burst_s, now_s),
            UnitKind.READ: TokenBucket(limits.read_units_per_s, limits.burst_s, now_s),
        }
        self.throttled = {UnitKind.WRITE: 0, UnitKind.READ: 0}

    def admit(self, kind: UnitKind, now_s: float, estimate_units: float) -> bool:
        if self.buckets[kind].take(now_s, estimate_units):
            return True
        self.throttled[kind] += 1
        return False

    def settle(self, kind: UnitKind, now_s: float, estimate_units: float, actual_units: float) -> None:
        """An admitted request is done: charge what it cost beyond its estimate (or refund the excess)."""
        if actual_units != estimate_units:
            self.buckets[kind].charge(now_s, actual_units - estimate_units)


# ---- units of stored items, without decoding them when the answer cannot change ----------------------------
#
# A stored item is its DynamoDB JSON, never smaller than DynamoDB's size of it (every value carries its type
# tag and quotes; B is base64 text of fewer raw bytes), as tests/unit/test_admission.py checks. So an image
# whose stored bytes fit in one unit costs the minimum, and only bigger ones are decoded to be measured.

Item = dict[str, Any]


def _decode(raw: bytes) -> Item:
    item: Item = orjson.loads(raw)
    return item


def stored_size(raw: bytes | None, unit_bytes: int, item: Item | None = None) -> int | None:
    """DynamoDB's size of a stored image for unit counting: exact, or any size within one unit when the
    stored bytes fit in ``unit_bytes`` (the unit count is the same). None when there is no image."""
    if item is not None:
        return item_size(item)
    if raw is None:
        return None
    if len(raw) <= unit_bytes:
        return len(raw)
    return item_size(_decode(raw))


def write_charge(old_raw: bytes | None, new_raw: bytes | None, *, old: Item | None = None,
                 new: Item | None = None) -> float:
    """Write units of one write: the larger of the item before and after, rounded up to 1 KB."""
    old_size = stored_size(old_raw, WRITE_UNIT_BYTES, old)
    new_size = stored_size(new_raw, WRITE_UNIT_BYTES, new)
    return write_units(max(old_size or 0, new_size or 0))


def read_charge(raw: bytes | None, *, consistent: bool) -> float:
    """Read units of reading one stored item (GetItem, a BatchGetItem key): rounded up to 4 KB."""
    return read_units(stored_size(raw, READ_UNIT_BYTES) or 0, consistent=consistent)
