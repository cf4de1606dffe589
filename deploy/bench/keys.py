"""Key choosers of YCSB's core workload: zipfian (plain and scrambled), uniform, latest, and the insert counter.

Each follows the generator of the same name in YCSB (site.ycsb.generator), so a skew of "zipfian" means
what it means in every published YCSB figure: constant 0.99, the hot items scattered over the key space by
FNV-64 in the scrambled form. Randomness is a ``random.Random`` passed in, so a seed replays a run.
"""

from __future__ import annotations

import heapq
import random
from functools import lru_cache

ZIPFIAN_CONSTANT = 0.99
# YCSB's ScrambledZipfianGenerator draws from a zipfian over 10^10 items whose zeta it ships precomputed
# (computing it takes minutes), then hashes the rank into the real range.
SCRAMBLED_ITEM_COUNT = 10_000_000_000
SCRAMBLED_ZETAN = 26.46902820178302

_FNV_OFFSET_BASIS_64 = 0xCBF29CE484222325
_FNV_PRIME_64 = 1099511628211
_MASK_64 = (1 << 64) - 1


def fnv64(value: int) -> int:
    """YCSB's ``Utils.fnvhash64``: FNV-1 over the 8 low-order bytes, as a Java long, then ``Math.abs``."""
    hashval = _FNV_OFFSET_BASIS_64
    for _ in range(8):
        hashval = ((hashval ^ (value & 0xFF)) * _FNV_PRIME_64) & _MASK_64
        value >>= 8
    if hashval >= 1 << 63:
        hashval = (1 << 64) - hashval  # abs of the negative Java long
    return hashval & ((1 << 63) - 1)


@lru_cache(maxsize=1 << 18)
def key_name(record: int) -> str:
    """YCSB's hashed key name (``orderedinserts=false``): records land all over the key space."""
    return f"user{fnv64(record)}"


def zeta(start: int, stop: int, theta: float, initial: float = 0.0) -> float:
    """Sum of 1/i^theta for i in (start, stop], added to ``initial`` (so it can be extended as items grow)."""
    total = initial
    for i in range(start, stop):
        total += 1.0 / (i + 1) ** theta
    return total


class Zipfian:
    """Popular items are the low numbers: item ``base`` is the most popular, then ``base + 1``, and so on.

    Gray et al., "Quickly Generating Billion-Record Synthetic Databases", as in YCSB's ZipfianGenerator.
    ``next_value(item_count)`` may be asked for a growing number of items (the latest chooser does this);
    zeta is then extended incrementally rather than recomputed.
    """

    def __init__(self, rng: random.Random, base: int, item_count: int, theta: float = ZIPFIAN_CONSTANT,
                 zetan: float | None = None) -> None:
        assert item_count >= 1 and 0 < theta < 1
        self._rng = rng
        self.base = base
        self.theta = theta
        self._alpha = 1.0 / (1.0 - theta)
        self._zeta2 = zeta(0, 2, theta)
        self._half_pow_theta = 1.0 + 0.5**theta
        self._count_for_zeta = item_count
        self._zetan = zeta(0, item_count, theta) if zetan is None else zetan
        self._eta = self._eta_for(item_count)

    def _eta_for(self, item_count: int) -> float:
        return float((1.0 - (2.0 / item_count) ** (1.0 - self.theta)) / (1.0 - self._zeta2 / self._zetan))

    @property
    def item_count(self) -> int:
        return self._count_for_zeta

    def next_value(self, item_count: int | None = None) -> int:
        if item_count is not None and item_count != self._count_for_zeta:
            if item_count > self._count_for_zeta:
                self._zetan = zeta(self._count_for_zeta, item_count, self.theta, self._zetan)
            else:
                self._zetan = zeta(0, item_count, self.theta)
            self._count_for_zeta = item_count
            self._eta = self._eta_for(item_count)
        u = self._rng.random()
        uz = u * self._zetan
        if uz < 1.0:
            return self.base
        if uz < self._half_pow_theta:
            return self.base + 1
        rank = int(self._count_for_zeta * (self._eta * u - self._eta + 1.0) ** self._alpha)
        return self.base + min(rank, self._count_for_zeta - 1)


class ScrambledZipfian:
    """Zipfian popularity over ``[low, high]`` with the popular items scattered by hashing (YCSB's default)."""

    def __init__(self, rng: random.Random, low: int, high: int) -> None:
        assert high >= low
        self.low = low
        self.item_count = high - low + 1
        self._zipfian = Zipfian(rng, 0, SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN)

    def next_value(self) -> int:
        return self.low + fnv64(self._zipfian.next_value()) % self.item_count


class Uniform:
    """Every item of ``[low, high]`` equally likely."""

    def __init__(self, rng: random.Random, low: int, high: int) -> None:
        assert high >= low
        self._rng = rng
        self.low = low
        self.high = high

    def next_value(self) -> int:
        return self._rng.randint(self.low, self.high)


class AcknowledgedCounter:
    """Hands out insert numbers; ``last_value`` is the highest number below which every insert has finished.

    Readers choose only among finished inserts, as in YCSB's AcknowledgedCounterGenerator, so a read never
    asks for a record whose insert is still in flight.
    """

    def __init__(self, start: int) -> None:
        self._next = start
        self._last = start - 1
        self._done: list[int] = []

    def next_value(self) -> int:
        value = self._next
        self._next += 1
        return value

    def acknowledge(self, value: int) -> None:
        assert self._last < value < self._next, (value, self._last, self._next)
        heapq.heappush(self._done, value)
        while self._done and self._done[0] == self._last + 1:
            self._last = heapq.heappop(self._done)

    @property
    def last_value(self) -> int:
        return self._last


class Latest:
    """Recent inserts are the most popular: ``last - zipfian(last)`` (YCSB's SkewedLatestGenerator)."""

    def __init__(self, rng: random.Random, counter: AcknowledgedCounter) -> None:
        self._counter = counter
        self._zipfian = Zipfian(rng, 0, max(1, counter.last_value + 1))

    def next_value(self) -> int:
        last = self._counter.last_value
        return last - self._zipfian.next_value(max(1, last + 1))
