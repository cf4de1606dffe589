"""Time as the runtime sees it: a monotonic clock in milliseconds that tests can replace.

Pure code (paxos/, dynamo/) never reads a clock; drivers read one of these and pass time in.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic_ms(self) -> float:
        """Milliseconds from an arbitrary origin; never goes backwards."""
        ...

    def wall_ms(self) -> float:
        """Milliseconds since the Unix epoch, for humans and logs only (it may jump)."""
        ...


class SystemClock:
    __slots__ = ()

    def monotonic_ms(self) -> float:
        return time.monotonic() * 1000.0

    def wall_ms(self) -> float:
        return time.time() * 1000.0


class ManualClock:
    """A clock that moves only when told to."""

    __slots__ = ("_now_ms", "_wall_offset_ms")

    def __init__(self, start_ms: float = 0.0, wall_offset_ms: float = 1_700_000_000_000.0) -> None:
        self._now_ms = start_ms
        self._wall_offset_ms = wall_offset_ms

    def monotonic_ms(self) -> float:
        return self._now_ms

    def wall_ms(self) -> float:
        return self._now_ms + self._wall_offset_ms

    def advance(self, ms: float) -> None:
        assert ms >= 0, "a monotonic clock never goes backwards"
        self._now_ms += ms


SYSTEM_CLOCK = SystemClock()
