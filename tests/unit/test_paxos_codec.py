import pytest
from hypothesis import given
from hypothesis import strategies as st

from paxos.types import Entry, EntryKind, HardState, Membership, Message, MessageType, Snapshot
from runtime.paxos_codec import (
    CodecError,
    decode_entry,
    decode_hard_state,
    decode_message,
    decode_snapshot,
    encode_entry,
    encode_hard_state,
    encode_message,
    encode_snapshot,
)

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=8)
ints = st.integers(min_value=0, max_value=2**62)
ballots = st.tuples(ints, ids)
entries = st.builds(Entry, index=ints, ballot=ballots, kind=st.sampled_from(EntryKind), data=st.binary(max_size=64))
memberships = st.builds(
    Membership,
    voters=st.lists(ids, min_size=1, max_size=5, unique=True).map(tuple),
    learners=st.lists(ids, max_size=2, unique=True).map(tuple),
)
snapshots = st.builds(Snapshot, index=ints, ballot=ballots, membership=memberships, data=st.binary(max_size=64))
messages = st.builds(
    Message,
    type=st.sampled_from(MessageType), frm=ids, to=ids, ballot=ballots, index=ints, log_ballot=ballots,
    entries=st.lists(entries, max_size=4).map(tuple), commit=ints, reject=st.booleans(), hint=ints, ctx=ints,
    snapshot=st.none() | snapshots,
)


@given(messages)
def test_message_round_trip(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg


@given(entries, snapshots, st.builds(HardState, promised=ballots, commit=ints))
def test_entry_snapshot_and_hard_state_round_trip(entry: Entry, snap: Snapshot, state: HardState) -> None:
    assert decode_entry(encode_entry(entry)) == entry
    assert decode_snapshot(encode_snapshot(snap)) == snap
    assert decode_hard_state(encode_hard_state(state)) == state


@given(messages, st.data())
def test_truncated_or_padded_bytes_are_rejected(msg: Message, data: st.DataObject) -> None:
    raw = encode_message(msg)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(CodecError):
        decode_message(raw[:cut])
    with pytest.raises(CodecError):
        decode_message(raw + b"\x00")


@given(st.binary(max_size=200))
def test_garbage_yields_a_message_or_codec_error(raw: bytes) -> None:
    try:
        decode_message(raw)
    except CodecError:
        pass
