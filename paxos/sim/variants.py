"""Deliberately BROKEN replicas, to prove the simulator's checks can fail. Never used by default: only via
``python -m paxos.sim --variant NAME`` or the tests. Each overrides one hook of ``Replica``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paxos.replica import Replica, Role
from paxos.types import Entry, HardState


class NoAdoption(Replica):
    """Phase 1 ignores the acceptors' logs: the new leader keeps its own, overwriting chosen entries."""

    variant_name = "no-adoption"

    def _adopt(self, best_entries: tuple[Entry, ...], best_from: str) -> None:
        return


class AckBeforePersist(Replica):
    """Appending entries does not ask for an fsync, so acknowledgements leave before the data is durable."""

    variant_name = "ack-before-persist"

    def _must_sync(self, entries: tuple[Entry, ...], hard_state: HardState | None) -> bool:
        return self._pending_install is not None or (
            hard_state is not None and hard_state.promised != self._prev_hs.promised)


class ReadWithoutLease(Replica):
    """A replica that believes it leads serves strongly consistent reads with no lease at all."""

    variant_name = "read-without-lease"

    def _lease_valid(self) -> bool:
        return self.role is Role.LEADER


class MinorityCommit(Replica):
    """The leader takes its commit index from the most advanced single replica, not from a quorum."""

    variant_name = "minority-commit"

    def _quorum_index(self, acked: dict[str, int]) -> int:
        return max(acked.values())


class ForgetPromise(Replica):
    """A promise is not fsynced: after a crash the acceptor may promise a lower ballot again. Caught by the
    handler property test (tests/unit/test_paxos_handlers.py); too rare for the simulator to hit reliably
    (the loss needs a crash before the next fsync, and the boot-time promise hides most of it)."""

    variant_name = "forget-promise"

    def _must_sync(self, entries: tuple[Entry, ...], hard_state: HardState | None) -> bool:
        return bool(entries) or self._pending_install is not None


class NoStickiness(Replica):
    """Followers promise a new ballot even while they still hear a leader, so a lease can be cut short.
    Also shown unsafe by a hand-driven scenario (tests/unit/test_paxos_replica.py)."""

    variant_name = "no-stickiness"

    def _in_lease(self) -> bool:
        return self.role is Role.LEADER


class NoBootPromise(Replica):
    """A restarted replica promises a new ballot at once, though it may have acknowledged a leader's heartbeat
    just before it crashed, on which that leader still holds a lease."""

    variant_name = "no-boot-promise"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_leader_contact = -self.cfg.election_timeout_ticks


VARIANTS: dict[str, Callable[..., Replica]] = {
    cls.variant_name: cls
    for cls in (NoAdoption, AckBeforePersist, ReadWithoutLease, MinorityCommit, NoBootPromise, NoStickiness)
}

__all__ = ["VARIANTS"]
