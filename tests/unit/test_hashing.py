"""The partition hash is on-disk format: pinned vectors fail on any change. Scan segments tile the space."""

from __future__ import annotations

import base64
from decimal import Decimal
from hashlib import blake2b

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.hashing import HASH_SPACE, MAX_TOTAL_SEGMENTS, hash_bytes, partition_hash, segment_range

# Also written down in docs/storage.md. Never edit these: stored keys start with these hashes.
VECTORS = [
    ("S", "a", 0xAD3AF77634066820),
    ("S", "", 0x406E17B63BB8307F),
    ("S", "user#1", 0xCB86097185B123CE),
    ("S", "\u00e9\u6f22\U0001f600", 0xCE0FFF66470F1D9C),
    ("N", "0", 0x57100709E08E5C65),
    ("N", "1", 0xA6CABACCB61B9943),
    ("N", "1.0", 0xA6CABACCB61B9943),
    ("N", "-12.5", 0x22D4CF25C5E3D28C),
    ("N", "1E+125", 0xC33D1771E94B8573),
    ("B", "AP8=", 0x05D841BDCE2718C3),
    ("B", "", 0xFFB4C28AD84BDA72),
]


@pytest.mark.parametrize(("key_type", "value", "expected"), VECTORS)
def test_pinned_vectors(key_type: str, value: str, expected: int) -> None:
    assert partition_hash(key_type, value) == expected


def test_the_definition_is_blake2b_of_tag_and_raw_bytes() -> None:
    def spec(tag: bytes, raw: bytes) -> int:
        return int.from_bytes(blake2b(tag + raw, digest_size=8).digest(), "big")

    assert partition_hash("S", "user#1") == spec(b"S", b"user#1")
    assert partition_hash("N", "-12.50") == spec(b"N", b"-12.5")
    assert partition_hash("B", "AP8=") == spec(b"B", b"\x00\xff")


def test_equal_numbers_hash_alike_and_forms_agree() -> None:
    assert len({partition_hash("N", text) for text in ["1", "1.0", "10E-1", "+1", "0.1e1"]}) == 1
    assert partition_hash("N", Decimal("1.000")) == partition_hash("N", "1")
    assert partition_hash("B", b"\x00\xff") == partition_hash("B", base64.b64encode(b"\x00\xff").decode())
    # The type is part of the hash: the string "1" and the number 1 live apart.
    assert partition_hash("S", "1") != partition_hash("N", "1")
    assert hash_bytes("S", b"1") == partition_hash("S", "1")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, MAX_TOTAL_SEGMENTS), st.data())
def test_segments_tile_the_hash_space(total: int, data: st.DataObject) -> None:
    segment = data.draw(st.integers(0, total - 1))
    lo, hi = segment_range(segment, total)
    assert 0 <= lo < hi <= HASH_SPACE
    if segment > 0:
        assert segment_range(segment - 1, total)[1] == lo
    if segment < total - 1:
        assert segment_range(segment + 1, total)[0] == hi
    assert segment_range(0, total)[0] == 0
    assert segment_range(total - 1, total)[1] == HASH_SPACE


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_hash_is_in_range(text: str) -> None:
    assert 0 <= partition_hash("S", text) < HASH_SPACE
