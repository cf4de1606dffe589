"""Quorum arithmetic for plain and joint memberships, as etcd's quorum/: small, pure, separately tested."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping

from paxos.types import Membership


class VoteResult(enum.Enum):
    PENDING = 0
    WON = 1
    LOST = 2


def majority_index(voters: Collection[str], acked: Mapping[str, int]) -> int:
    """The highest value that a majority of ``voters`` has reached (missing voters count as 0).
    An empty voter set is no constraint (returns a huge number) so joint configs compose with min()."""
    if not voters:
        return 1 << 62
    values = sorted((acked.get(v, 0) for v in voters), reverse=True)
    return values[len(values) // 2]


def committed_index(membership: Membership, acked: Mapping[str, int]) -> int:
    """The highest value reached by a quorum of ``membership`` (both halves when joint)."""
    return min(majority_index(membership.voters, acked), majority_index(membership.outgoing, acked))


def _majority_vote(voters: Collection[str], granted: Collection[str], rejected: Collection[str]) -> VoteResult:
    if not voters:
        return VoteResult.WON
    need = len(voters) // 2 + 1
    yes = sum(1 for v in voters if v in granted)
    no = sum(1 for v in voters if v in rejected)
    if yes >= need:
        return VoteResult.WON
    if len(voters) - no < need:
        return VoteResult.LOST
    return VoteResult.PENDING


def vote_result(membership: Membership, granted: Collection[str], rejected: Collection[str]) -> VoteResult:
    a = _majority_vote(membership.voters, granted, rejected)
    b = _majority_vote(membership.outgoing, granted, rejected)
    if a is VoteResult.LOST or b is VoteResult.LOST:
        return VoteResult.LOST
    if a is VoteResult.WON and b is VoteResult.WON:
        return VoteResult.WON
    return VoteResult.PENDING


def has_quorum(membership: Membership, ids: Collection[str]) -> bool:
    return vote_result(membership, ids, ()) is VoteResult.WON
