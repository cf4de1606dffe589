"""The snapshot-transfer contract: request framing, the receiving marker, its limits in the cluster config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.kinds import Kind
from runtime.config import ConfigError, Limits
from runtime.snapshot_stream import KIND_SNAPSHOT, Receiving, combine, decode_request, encode_request
from runtime.store import Store


def test_the_envelope_kind_matches_the_contract() -> None:
    assert Kind.SNAPSHOT == KIND_SNAPSHOT


@settings(max_examples=50)
@given(st.dictionaries(st.text(max_size=8), st.integers(0, 2**63 - 1) | st.text(max_size=8), max_size=4), st.binary(max_size=256))
def test_a_request_round_trips(header: dict[str, object], data: bytes) -> None:
    assert decode_request(encode_request(header, data)) == (header, data)


def test_a_truncated_request_is_refused() -> None:
    with pytest.raises(ValueError):
        decode_request(encode_request({"op": "chunk"}, b"xyz")[:5])


def test_the_marker_round_trips() -> None:
    for rec in (Receiving("sn-a1.1.abc"), Receiving("t", ("sn-a1", "sn-b1", "sn-c1"), (42, (3, "sn-b1")))):
        back = Receiving.from_marker(rec.marker())
        assert (back.transfer_id, back.voters, back.complete) == (rec.transfer_id, rec.voters, rec.complete)


def test_the_checksum_depends_on_every_chunk_and_their_order() -> None:
    a, b = b"a" * 16, b"b" * 16
    assert combine([a, b]) != combine([b, a]) != combine([a])


def test_snapshot_limits_are_validated() -> None:
    Limits(max_grpc_message_bytes=2 << 20, max_batch_bytes=1 << 20, snapshot_chunk_bytes=256 << 10)
    with pytest.raises(ConfigError, match="snapshot_chunk_bytes"):
        Limits(max_grpc_message_bytes=2 << 20, max_batch_bytes=1 << 20, snapshot_chunk_bytes=2 << 20)
    with pytest.raises(ConfigError, match="snapshot_chunk_timeout_ms"):
        Limits(snapshot_chunk_timeout_ms=10_000, snapshot_transfer_timeout_ms=5_000)
    with pytest.raises(ConfigError, match="snapshot_chunks_in_flight"):
        Limits(snapshot_chunks_in_flight=0)


def test_a_chunk_with_a_record_outside_the_range_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "a") as a, Store(tmp_path / "b") as b:
        batch = a.batch()
        for key in (b"\x10a", b"\x10b", b"\x11a"):
            batch.put(key, b"v")
        a.write(batch, sync=False)
        (chunk,) = list(a.export_range(b"\x10", b"\x12"))
        assert b.import_chunk(b.batch(), chunk, [(b"\x10", b"\x12")]) == 3
        with pytest.raises(ValueError, match="outside the range"):
            b.import_chunk(b.batch(), chunk, [(b"\x10", b"\x11")])
