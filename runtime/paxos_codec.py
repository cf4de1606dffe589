"""Bytes for the replication core's messages, entries and hard state, as they cross the wire and the disk.

A small hand-written binary format (struct): Paxos traffic is the hottest path between nodes, and the
payload must be cheap to build and parse. Pickle would be as fast but executes what it reads; this format
only ever yields our own frozen dataclasses, and rejects anything malformed with ``CodecError``.
"""

from __future__ import annotations

import struct

from paxos.types import (
    Ballot,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    MessageType,
    Snapshot,
)

_HEAD = struct.Struct("<BBqqqqqI")  # type, flags, index, commit, hint, ctx, ballot round, n_entries
_ENTRY = struct.Struct("<qqBI")  # index, ballot round, kind, data length
_Q = struct.Struct("<q")
_H = struct.Struct("<H")
_I = struct.Struct("<I")
_FLAG_REJECT = 1
_FLAG_SNAPSHOT = 2


class CodecError(ValueError):
    """Bytes that are not a valid encoding (a bug or corruption on the other side)."""


def _put_str(out: list[bytes], text: str) -> None:
    raw = text.encode()
    out.append(_H.pack(len(raw)))
    out.append(raw)


def _put_bytes(out: list[bytes], raw: bytes) -> None:
    out.append(_I.pack(len(raw)))
    out.append(raw)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.buf):
            raise CodecError("truncated")
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, st: struct.Struct) -> tuple[int, ...]:
        try:
            values = st.unpack_from(self.buf, self.pos)
        except struct.error as exc:
            raise CodecError("truncated") from exc
        self.pos += st.size
        return values

    def str(self) -> str:
        (size,) = self.unpack(_H)
        try:
            return self.take(size).decode()
        except UnicodeDecodeError as exc:
            raise CodecError("bad text") from exc

    def bytes(self) -> bytes:
        (size,) = self.unpack(_I)
        return self.take(size)

    def ballot(self) -> Ballot:
        (round_,) = self.unpack(_Q)
        return (round_, self.str())

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise CodecError("trailing bytes")


def _put_entry(out: list[bytes], entry: Entry) -> None:
    out.append(_ENTRY.pack(entry.index, entry.ballot[0], int(entry.kind), len(entry.data)))
    _put_str(out, entry.ballot[1])
    out.append(entry.data)


def _read_entry(r: _Reader) -> Entry:
    index, round_, kind, size = r.unpack(_ENTRY)
    ballot = (round_, r.str())
    try:
        entry_kind = EntryKind(kind)
    except ValueError as exc:
        raise CodecError(f"bad entry kind {kind}") from exc
    return Entry(index, ballot, entry_kind, r.take(size))


def _put_snapshot(out: list[bytes], snap: Snapshot) -> None:
    out.append(_Q.pack(snap.index))
    out.append(_Q.pack(snap.ballot[0]))
    _put_str(out, snap.ballot[1])
    _put_bytes(out, snap.membership.encode())
    _put_bytes(out, snap.data)


def _read_snapshot(r: _Reader) -> Snapshot:
    (index,) = r.unpack(_Q)
    ballot = r.ballot()
    membership_raw = r.bytes()
    try:
        membership = Membership.decode(membership_raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError("bad membership") from exc
    return Snapshot(index, ballot, membership, r.bytes())


def encode_message(msg: Message) -> bytes:
    flags = (_FLAG_REJECT if msg.reject else 0) | (_FLAG_SNAPSHOT if msg.snapshot is not None else 0)
    out = [
        _HEAD.pack(int(msg.type), flags, msg.index, msg.commit, msg.hint, msg.ctx, msg.ballot[0], len(msg.entries))
    ]
    _put_str(out, msg.frm)
    _put_str(out, msg.to)
    _put_str(out, msg.ballot[1])
    out.append(_Q.pack(msg.log_ballot[0]))
    _put_str(out, msg.log_ballot[1])
    for entry in msg.entries:
        _put_entry(out, entry)
    if msg.snapshot is not None:
        _put_snapshot(out, msg.snapshot)
    return b"".join(out)


def decode_message(data: bytes, group: str = "") -> Message:
    r = _Reader(data)
    type_, flags, index, commit, hint, ctx, round_, n_entries = r.unpack(_HEAD)
    try:
        msg_type = MessageType(type_)
    except ValueError as exc:
        raise CodecError(f"bad message type {type_}") from exc
    frm = r.str()
    to = r.str()
    ballot = (round_, r.str())
    log_ballot = r.ballot()
    entries = tuple(_read_entry(r) for _ in range(n_entries))
    snapshot = _read_snapshot(r) if flags & _FLAG_SNAPSHOT else None
    r.done()
    return Message(
        type=msg_type, frm=frm, to=to, ballot=ballot, index=index, log_ballot=log_ballot, entries=entries,
        commit=commit, reject=bool(flags & _FLAG_REJECT), hint=hint, ctx=ctx, snapshot=snapshot, group=group,
    )


def encode_entry(entry: Entry) -> bytes:
    out: list[bytes] = []
    _put_entry(out, entry)
    return b"".join(out)


def decode_entry(data: bytes) -> Entry:
    r = _Reader(data)
    entry = _read_entry(r)
    r.done()
    return entry


def encode_hard_state(state: HardState) -> bytes:
    out = [_Q.pack(state.promised[0]), _Q.pack(state.commit)]
    _put_str(out, state.promised[1])
    return b"".join(out)


def decode_hard_state(data: bytes) -> HardState:
    r = _Reader(data)
    (round_,) = r.unpack(_Q)
    (commit,) = r.unpack(_Q)
    promised = (round_, r.str())
    r.done()
    return HardState(promised=promised, commit=commit)


def encode_snapshot(snap: Snapshot) -> bytes:
    out: list[bytes] = []
    _put_snapshot(out, snap)
    return b"".join(out)


def decode_snapshot(data: bytes) -> Snapshot:
    r = _Reader(data)
    snap = _read_snapshot(r)
    r.done()
    return snap
