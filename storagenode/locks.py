"""A transaction's lock on an item, kept in the item's own stored bytes.

A TransactWriteItems that spans partitions first *prepares* each of its items: the partition's leader
checks the action's condition and replaces the item's stored bytes with a lock holding the bytes it had
(``old``), the bytes the transaction would give it (``new``) and where the transaction's decision lives
(``meta``, see ``storagenode.txn``). Committing writes ``new`` in place of the lock, aborting writes
``old``.

Keeping the lock in the item's value, not beside it, means everything that moves items moves locks with
them: snapshots to a new or lagging replica, split children, repairs. A replica's state is still just its
key range.

Stored item bytes are JSON objects and start with ``{``; a lock starts with ``LOCK_MAGIC``, which no item
does. Readers see the *committed view*: ``old`` while the transaction is undecided, ``new`` once its
primary item recorded the commit (``COMMITTED``, only ever on a primary).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeGuard

LOCK_MAGIC = b"\x00"
PREPARED = 1  # the transaction is undecided
COMMITTED = 2  # the primary item recorded the commit; the other items are being committed
TXN_ID_BYTES = 16
_HEADER = struct.Struct(">cB16siiI")  # magic, state, txn id, old length (-1: absent), new length (-1: absent), meta length


@dataclass(frozen=True, slots=True)
class Lock:
    state: int
    txn: bytes
    old: bytes | None  # the item's stored bytes before the transaction (None: absent)
    new: bytes | None  # its stored bytes if the transaction commits (None: deleted)
    meta: bytes  # JSON: where the primary item is, and on the primary every item of the transaction

    def encode(self) -> bytes:
        assert self.state in (PREPARED, COMMITTED), self.state
        assert len(self.txn) == TXN_ID_BYTES, self.txn
        old = self.old if self.old is not None else b""
        new = self.new if self.new is not None else b""
        header = _HEADER.pack(LOCK_MAGIC, self.state, self.txn, -1 if self.old is None else len(old),
                              -1 if self.new is None else len(new), len(self.meta))
        return b"".join((header, old, new, self.meta))

    @property
    def committed(self) -> bytes | None:
        """What a read sees while the lock is held."""
        return self.new if self.state == COMMITTED else self.old


def is_lock(raw: bytes | None) -> TypeGuard[bytes]:
    return raw is not None and raw[:1] == LOCK_MAGIC


def decode_lock(raw: bytes) -> Lock:
    magic, state, txn, old_len, new_len, meta_len = _HEADER.unpack_from(raw, 0)
    assert magic == LOCK_MAGIC and state in (PREPARED, COMMITTED), (magic, state)
    pos = _HEADER.size
    old = None
    if old_len >= 0:
        old = raw[pos : pos + old_len]
        pos += old_len
    new = None
    if new_len >= 0:
        new = raw[pos : pos + new_len]
        pos += new_len
    meta = raw[pos : pos + meta_len]
    assert pos + meta_len == len(raw), "trailing bytes in a lock"
    return Lock(state, txn, old, new, meta)


def committed_view(raw: bytes | None) -> bytes | None:
    """The item's bytes as reads see them: the stored bytes, or a lock's committed view."""
    if raw is None or raw[:1] != LOCK_MAGIC:
        return raw
    return decode_lock(raw).committed


def lock_txn(raw: bytes) -> bytes:
    """The transaction id of a lock, without decoding the rest."""
    return raw[2 : 2 + TXN_ID_BYTES]
