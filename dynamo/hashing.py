"""The partition hash: where a partition-key value lives in the 64-bit hash space.

``partition_hash`` is part of the on-disk format: every stored key starts with it, and partitions are
ranges of it. It must never change once data exists; ``tests/unit/test_hashing.py`` pins vectors, and
``docs/storage.md`` writes the function down.

    hash64 = int.from_bytes(blake2b(tag + raw, digest_size=8).digest(), "big")

with ``tag`` one ASCII byte (``S``, ``N`` or ``B``) and ``raw`` the UTF-8 bytes of an S, the UTF-8 bytes of
the *normalised* text of an N (so 1, 1.0 and 10E-1 hash alike), or the decoded bytes of a B.
"""

from __future__ import annotations

from decimal import Decimal
from hashlib import blake2b

from dynamo.keycodec import HASH_SPACE, binary_value
from dynamo.numbers import check_decimal, format_number, normalize_number

__all__ = ["HASH_SPACE", "MAX_TOTAL_SEGMENTS", "hash_bytes", "partition_hash", "segment_range"]
MAX_TOTAL_SEGMENTS = 1_000_000  # DynamoDB's limit for a parallel Scan's TotalSegments

_TAGS = {"S": b"S", "N": b"N", "B": b"B"}


def hash_bytes(key_type: str, raw: bytes) -> int:
    """The hash of a key value already reduced to its raw bytes (see the module doc)."""
    tag = _TAGS.get(key_type)
    assert tag is not None, f"not a key attribute type: {key_type!r}"
    return int.from_bytes(blake2b(tag + raw, digest_size=8).digest(), "big")


def partition_hash(key_type: str, value: str | bytes | Decimal) -> int:
    """Hash a partition-key value in the item's form (S text, N text, B base64 text; or raw B bytes, Decimal N)."""
    if key_type == "S":
        assert isinstance(value, str)
        raw = value.encode("utf-8")
    elif key_type == "N":
        if isinstance(value, str):
            text = normalize_number(value)
        else:
            assert isinstance(value, Decimal)
            text = format_number(check_decimal(value))
        raw = text.encode("ascii")
    elif key_type == "B":
        assert isinstance(value, str | bytes)
        raw = binary_value(value)
    else:
        raise AssertionError(f"not a key attribute type: {key_type!r}")
    return hash_bytes(key_type, raw)


def segment_range(segment: int, total_segments: int) -> tuple[int, int]:
    """The hash range ``[lo, hi)`` that parallel-Scan segment ``segment`` of ``total_segments`` covers.

    Segments split the hash space into equal contiguous slices, so together they cover it exactly once.
    """
    # The router validates Segment/TotalSegments with DynamoDB's messages before we get here.
    assert 1 <= total_segments <= MAX_TOTAL_SEGMENTS, total_segments
    assert 0 <= segment < total_segments, (segment, total_segments)
    return segment * HASH_SPACE // total_segments, (segment + 1) * HASH_SPACE // total_segments
