"""Expected refusals of the replication core, as typed exceptions the driver maps to retries or redirects."""

from __future__ import annotations


class PaxosError(Exception):
    """Base of every expected refusal. Broken invariants are assertions, never these."""


class NotLeader(PaxosError):
    """This replica cannot take the request; ``leader_hint`` is the leader it last heard from ('' if none)."""

    def __init__(self, leader_hint: str) -> None:
        super().__init__(f"not the leader (leader hint: {leader_hint or 'unknown'})")
        self.leader_hint = leader_hint


class LeaseNotReady(PaxosError):
    """The leader cannot serve a strongly consistent read yet: its lease is not (or no longer) valid, or it
    has not yet committed an entry of its own ballot. Retry shortly, at the same replica."""


class ProposalDropped(PaxosError):
    """Refused to bound memory: too many uncommitted entries. Retry after backing off."""


class ConfigChangeRejected(PaxosError):
    """A membership change is already pending, or the requested change is not valid."""
