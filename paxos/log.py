"""The replica's log: a snapshot point, then entries; the tail from ``unstable_from`` is not yet durable.

Keeping the durable/non-durable boundary here (as etcd's log.go/log_unstable.go) is what lets the replica
count itself, and acknowledge others, only for entries that are already on disk.
"""

from __future__ import annotations

from paxos.types import Ballot, Entry


class Log:
    __slots__ = ("offset", "offset_ballot", "entries", "unstable_from")

    def __init__(self, offset: int, offset_ballot: Ballot, entries: list[Entry]) -> None:
        for k, e in enumerate(entries):
            assert e.index == offset + 1 + k, f"non-contiguous persisted log at {e.index}"
        self.offset = offset  # index covered by the snapshot (0: none); entries[0].index == offset + 1
        self.offset_ballot = offset_ballot
        self.entries = entries
        self.unstable_from = offset + 1 + len(entries)  # everything given at construction is durable

    @property
    def last_index(self) -> int:
        return self.offset + len(self.entries)

    @property
    def last_ballot(self) -> Ballot:
        return self.entries[-1].ballot if self.entries else self.offset_ballot

    @property
    def stable_index(self) -> int:
        return self.unstable_from - 1

    def ballot_at(self, index: int) -> Ballot | None:
        """The ballot of the entry at ``index``; None if compacted away or beyond the end."""
        if index == self.offset:
            return self.offset_ballot
        if index < self.offset or index > self.last_index:
            return None
        return self.entries[index - self.offset - 1].ballot

    def entry(self, index: int) -> Entry:
        assert self.offset < index <= self.last_index, f"entry {index} not in log ({self.offset}, {self.last_index}]"
        return self.entries[index - self.offset - 1]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries with lo <= index < hi (clamped to the end). ``lo`` must not be compacted."""
        assert lo > self.offset, f"slice from {lo} but log compacted to {self.offset}"
        return self.entries[lo - self.offset - 1 : hi - self.offset - 1]

    def append(self, entry: Entry) -> None:
        assert entry.index == self.last_index + 1, f"append {entry.index} after {self.last_index}"
        self.entries.append(entry)

    def find_conflict(self, entries: tuple[Entry, ...] | list[Entry]) -> int:
        """Index of the first of ``entries`` that is missing here or has another ballot; 0 if none."""
        for e in entries:
            if e.index <= self.offset:
                continue  # compacted entries are committed, so they match
            if self.ballot_at(e.index) != e.ballot:
                return e.index
        return 0

    def append_from(self, entries: tuple[Entry, ...] | list[Entry]) -> int:
        """Accept ``entries`` (contiguous, first within the log + 1): keep what matches, truncate at the
        first conflict, append the rest. Returns the first index written (0: nothing changed)."""
        conflict = self.find_conflict(entries)
        if not conflict:
            return 0
        assert conflict <= self.last_index + 1, f"gap: {conflict} after {self.last_index}"
        del self.entries[conflict - self.offset - 1 :]
        first = entries[0].index
        self.entries.extend(entries[conflict - first :])
        if conflict < self.unstable_from:
            self.unstable_from = conflict
        return conflict

    def unstable(self) -> tuple[Entry, ...]:
        return tuple(self.entries[self.unstable_from - self.offset - 1 :])

    def stable_to(self, index: int, ballot: Ballot) -> None:
        """The entries up to ``index`` handed out in a Ready are now durable (unless since replaced)."""
        if self.ballot_at(index) == ballot and index >= self.unstable_from:
            self.unstable_from = index + 1

    def compact(self, index: int) -> None:
        ballot = self.ballot_at(index)
        assert ballot is not None and index <= self.stable_index, f"cannot compact to {index}"
        del self.entries[: index - self.offset]
        self.offset = index
        self.offset_ballot = ballot

    def restore(self, index: int, ballot: Ballot) -> None:
        """Replace everything by a snapshot point (snapshot install)."""
        self.entries = []
        self.offset = index
        self.offset_ballot = ballot
        self.unstable_from = index + 1
