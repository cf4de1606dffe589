"""Order-preserving, self-delimiting byte encodings of key values, and the layout of stored keys.

An item is stored under::

    table_id (u32 BE) · hash64 (u64 BE) · enc(pk) [· enc(sk)]

so one table's items are one key range, a partition ``[lo, hi)`` of the hash space is one key range (a
split needs no data movement), one partition-key value's items are one key range (``pk_prefix``), and a
Query is a range scan inside it: ``enc`` sorts exactly as DynamoDB orders key values.

- S: the UTF-8 bytes (DynamoDB orders S by UTF-8 bytes), B: the raw bytes (unsigned), each with 0x00 escaped
  as 0x00 0xFF and terminated by 0x00 0x01. The terminator sorts below every escaped byte, so a value sorts
  before its extensions, and no encoding is a prefix of another.
- N: one sign byte (0x01 negative, 0x02 zero, 0x03 positive); for non-zero values one exponent byte, the
  decimal exponent of the leading digit plus 130 (DynamoDB's range -130..125 fills 0..255 exactly), then
  the significant digits in pairs, one byte per pair: 2*pair+1, except the last pair, 2*pair (so the
  encoding ends itself: its only even byte is the last). Trailing zeros are dropped, so 1 and 1.00 encode
  alike. Negative numbers invert the exponent and digit bytes (255 - b) so larger magnitudes sort first.
  This is CockroachDB's decimal key encoding (itself after SQLite4's) with a single-byte exponent.

Every encoding is prefix-free, so ``enc(pk) + enc(sk)`` tuples sort lexicographically, and for any encoded
key ``k`` no other key lies strictly between ``k`` and ``k + b"\\x00"``: inclusive and exclusive bounds both
become half-open ``[start, end)`` byte ranges (``KeyRange``).

Values are given in the item's internal (wire) form: S and N as text, B as base64 text. ``encode_binary``
takes raw bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from enum import Enum

from dynamo.errors import ValidationException
from dynamo.numbers import MIN_EXPONENT, check_decimal, format_number, parse_number
from dynamo.values import b64decode_value

TABLE_ID_BYTES = 4
HASH_BYTES = 8
PREFIX_BYTES = TABLE_ID_BYTES + HASH_BYTES
# The all-ones id is kept back so that every table range has an end key.
MAX_TABLE_ID = (1 << 32) - 2
HASH_SPACE = 1 << 64
# normalize() rounds to the context precision: keep every one of the 38 digits.
_EXACT = Context(prec=60, Emax=1_000, Emin=-1_000)

_ESCAPE = b"\x00\xff"
_TERMINATOR = b"\x00\x01"
_NEGATIVE, _ZERO, _POSITIVE = 0x01, 0x02, 0x03
_EXPONENT_BIAS = -MIN_EXPONENT  # 130: the exponent byte of 1E-130 is 0, of 9.9E+125 is 255


class KeyOp(Enum):
    """The sort-key conditions a KeyConditionExpression may use."""

    EQ = "EQ"
    LT = "LT"
    LE = "LE"
    GT = "GT"
    GE = "GE"
    BETWEEN = "BETWEEN"
    BEGINS_WITH = "BEGINS_WITH"


_ARITY = {KeyOp.BETWEEN: 2}


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The stored keys ``start <= key < end``; empty when ``start >= end``."""

    start: bytes
    end: bytes

    @property
    def empty(self) -> bool:
        return self.start >= self.end

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.start <= key < self.end

    def intersect(self, other: KeyRange) -> KeyRange:
        """The keys in both (e.g. a Scan segment's range clipped to one partition's)."""
        return KeyRange(max(self.start, other.start), min(self.end, other.end))

    def resume(self, last_key: bytes, reverse: bool = False) -> KeyRange:
        """What is left to read after a page that ended at ``last_key`` (an ExclusiveStartKey)."""
        if reverse:
            return KeyRange(self.start, min(self.end, last_key))
        return KeyRange(max(self.start, successor(last_key)), self.end)


# ----------------------------------------------------------------------------------------------- numbers


def encode_number(value: Decimal | str) -> bytes:
    """Order-preserving, self-delimiting bytes of a DynamoDB number (validated: 38 digits, -130..125)."""
    number = parse_number(value) if isinstance(value, str) else check_decimal(value)
    if number.is_zero():
        return bytes((_ZERO,))
    sign, digits, exponent = number.normalize(_EXACT).as_tuple()
    assert isinstance(exponent, int)
    leading_exponent = exponent + len(digits) - 1
    exponent_byte = leading_exponent + _EXPONENT_BIAS
    assert 0 <= exponent_byte <= 255, value
    padded = digits if len(digits) % 2 == 0 else (*digits, 0)
    out = bytearray()
    for i in range(0, len(padded), 2):
        out.append(2 * (padded[i] * 10 + padded[i + 1]) + 1)
    out[-1] -= 1
    if sign:
        return bytes((_NEGATIVE, 255 - exponent_byte)) + bytes(255 - b for b in out)
    return bytes((_POSITIVE, exponent_byte)) + bytes(out)


def decode_number(data: bytes, offset: int = 0) -> tuple[Decimal, int]:
    """Decode ``encode_number`` bytes at ``offset``: (value, offset just past them)."""
    tag = data[offset]
    if tag == _ZERO:
        return Decimal(0), offset + 1
    assert tag in (_NEGATIVE, _POSITIVE), f"bad number tag {tag:#x} at {offset}"
    negative = tag == _NEGATIVE
    exponent_byte = data[offset + 1]
    if negative:
        exponent_byte = 255 - exponent_byte
    digits: list[int] = []
    position = offset + 2
    while True:
        byte = data[position]
        if negative:
            byte = 255 - byte
        position += 1
        pair = byte >> 1
        assert pair <= 99, f"bad digit byte at {position - 1}"
        digits += (pair // 10, pair % 10)
        if byte & 1 == 0:
            break
    if digits[-1] == 0:
        digits.pop()
    leading_exponent = exponent_byte - _EXPONENT_BIAS
    number = Decimal((int(negative), tuple(digits), leading_exponent - len(digits) + 1))
    return number, position


# ----------------------------------------------------------------------------------- strings and binaries


def encode_binary(raw: bytes) -> bytes:
    """Order-preserving, self-delimiting bytes of raw bytes (unsigned lexicographic order)."""
    return raw.replace(b"\x00", _ESCAPE) + _TERMINATOR


def encode_string(text: str) -> bytes:
    """Order-preserving, self-delimiting bytes of a string (DynamoDB orders S by UTF-8 bytes)."""
    return encode_binary(text.encode("utf-8"))


def decode_binary(data: bytes, offset: int = 0) -> tuple[bytes, int]:
    """Decode ``encode_binary`` bytes at ``offset``: (raw bytes, offset just past the terminator)."""
    out = bytearray()
    position = offset
    while True:
        zero = data.index(b"\x00", position)
        out += data[position:zero]
        marker = data[zero + 1]
        if marker == 0x01:
            return bytes(out), zero + 2
        assert marker == 0xFF, f"bad escape {marker:#x} at {zero + 1}"
        out.append(0)
        position = zero + 2


def decode_string(data: bytes, offset: int = 0) -> tuple[str, int]:
    raw, end = decode_binary(data, offset)
    return raw.decode("utf-8"), end


# ------------------------------------------------------------------------------------- typed key values


def binary_value(value: str | bytes) -> bytes:
    """The raw bytes of a validated B value given as base64 text (the item's form) or already as bytes."""
    if isinstance(value, bytes):
        return value
    return b64decode_value(value)


def encode_key_value(key_type: str, value: str | bytes | Decimal) -> bytes:
    """Encode a key attribute's value: S text, N text or Decimal, B base64 text or raw bytes."""
    if key_type == "S":
        assert isinstance(value, str)
        return encode_string(value)
    if key_type == "N":
        assert isinstance(value, str | Decimal)
        return encode_number(value)
    if key_type == "B":
        assert isinstance(value, str | bytes)
        return encode_binary(binary_value(value))
    raise AssertionError(f"not a key attribute type: {key_type!r}")


def decode_key_value(key_type: str, data: bytes, offset: int = 0) -> tuple[str, int]:
    """Decode a key value back to its wire form (S text, normalised N text, B base64 text)."""
    if key_type == "S":
        return decode_string(data, offset)
    if key_type == "N":
        number, end = decode_number(data, offset)
        return format_number(number), end
    if key_type == "B":
        raw, end = decode_binary(data, offset)
        return base64.b64encode(raw).decode("ascii"), end
    raise AssertionError(f"not a key attribute type: {key_type!r}")


# ------------------------------------------------------------------------------------------- key layout


def table_prefix(table_id: int) -> bytes:
    assert 0 <= table_id <= MAX_TABLE_ID, table_id
    return table_id.to_bytes(TABLE_ID_BYTES, "big")


def hash_prefix(table_id: int, hash64: int) -> bytes:
    assert 0 <= hash64 < HASH_SPACE, hash64
    return table_prefix(table_id) + hash64.to_bytes(HASH_BYTES, "big")


def pk_prefix(table_id: int, hash64: int, pk_type: str, pk_value: str | bytes | Decimal) -> bytes:
    """The prefix shared by every item with this partition-key value, and by no other item."""
    return hash_prefix(table_id, hash64) + encode_key_value(pk_type, pk_value)


def item_key(
    table_id: int,
    hash64: int,
    pk_type: str,
    pk_value: str | bytes | Decimal,
    sk_type: str | None = None,
    sk_value: str | bytes | Decimal | None = None,
) -> bytes:
    """The stored key of an item: ``table_id · hash64 · enc(pk) [· enc(sk)]``."""
    key = pk_prefix(table_id, hash64, pk_type, pk_value)
    if sk_type is None:
        assert sk_value is None
        return key
    assert sk_value is not None
    return key + encode_key_value(sk_type, sk_value)


def key_hash(key: bytes) -> int:
    """The partition hash a stored key carries (where a split point falls, for instance)."""
    return int.from_bytes(key[TABLE_ID_BYTES:PREFIX_BYTES], "big")


@dataclass(frozen=True, slots=True)
class DecodedKey:
    table_id: int
    hash64: int
    pk: str
    sk: str | None


def decode_item_key(key: bytes, pk_type: str, sk_type: str | None = None) -> DecodedKey:
    """Split a stored key back into its parts (values in wire form)."""
    table_id = int.from_bytes(key[:TABLE_ID_BYTES], "big")
    hash64 = key_hash(key)
    pk, offset = decode_key_value(pk_type, key, PREFIX_BYTES)
    sk: str | None = None
    if sk_type is not None:
        sk, offset = decode_key_value(sk_type, key, offset)
    assert offset == len(key), f"trailing bytes in key {key!r}"
    return DecodedKey(table_id, hash64, pk, sk)


def successor(key: bytes) -> bytes:
    """The smallest byte string greater than ``key``: turns an inclusive bound into an exclusive one."""
    return key + b"\x00"


def prefix_end(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    assert stripped, "a prefix of only 0xFF bytes has no end"
    return stripped[:-1] + bytes((stripped[-1] + 1,))


# ------------------------------------------------------------------------------------------ key ranges


def table_range(table_id: int) -> KeyRange:
    """Every stored key of one table (or of one index keyspace)."""
    return hash_range(table_id, 0, HASH_SPACE)


def hash_range(table_id: int, lo: int, hi: int) -> KeyRange:
    """The stored keys of a partition ``[lo, hi)`` of the hash space (also: a Scan segment)."""
    assert 0 <= lo <= hi <= HASH_SPACE, (lo, hi)
    return KeyRange(_hash_bound(table_id, lo), _hash_bound(table_id, hi))


def _hash_bound(table_id: int, hash64: int) -> bytes:
    """The first key at or after ``hash64`` in the table; ``HASH_SPACE`` is the table's end."""
    if hash64 == HASH_SPACE:
        return prefix_end(table_prefix(table_id))
    return hash_prefix(table_id, hash64)


def sort_key_range(
    table_id: int,
    hash64: int,
    pk: tuple[str, str | bytes | Decimal],
    sk_type: str | None = None,
    op: KeyOp | None = None,
    values: Sequence[str | bytes | Decimal] = (),
) -> KeyRange:
    """The stored keys a Query on partition key ``pk`` (type, value) with sort-key condition ``op`` reads.

    ``op`` None means no sort-key condition (the whole item collection). BEGINS_WITH is a prefix range on
    S and B. A BETWEEN whose lower bound is above its upper bound raises DynamoDB's ValidationException.
    """
    prefix = pk_prefix(table_id, hash64, pk[0], pk[1])
    whole = KeyRange(prefix, prefix_end(prefix))
    if op is None:
        assert not values
        return whole
    assert sk_type is not None, "a sort-key condition on a table without a sort key"
    assert len(values) == _ARITY.get(op, 1), (op, values)
    if op is KeyOp.BEGINS_WITH:
        if sk_type == "N":
            raise ValidationException(
                "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
                "operator or function: begins_with, operand type: N"
            )
        start = prefix + encode_key_value(sk_type, values[0])[: -len(_TERMINATOR)]
        return KeyRange(start, prefix_end(start))
    first = prefix + encode_key_value(sk_type, values[0])
    if op is KeyOp.EQ:
        return KeyRange(first, successor(first))
    if op is KeyOp.LT:
        return KeyRange(prefix, first)
    if op is KeyOp.LE:
        return KeyRange(prefix, successor(first))
    if op is KeyOp.GT:
        return KeyRange(successor(first), whole.end)
    if op is KeyOp.GE:
        return KeyRange(first, whole.end)
    assert op is KeyOp.BETWEEN
    last = prefix + encode_key_value(sk_type, values[1])
    if first > last:
        raise ValidationException(
            "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than "
            f"or equal to lower bound; lower bound operand: AttributeValue: {{{sk_type}:{_shown(values[0])}}}, "
            f"upper bound operand: AttributeValue: {{{sk_type}:{_shown(values[1])}}}"
        )
    return KeyRange(first, successor(last))


def _shown(value: str | bytes | Decimal) -> str:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else str(value)
