"""The key codec sorts exactly as DynamoDB orders key values, round-trips, and keeps item collections apart."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dynamo.errors import ValidationException
from dynamo.keycodec import (
    HASH_SPACE,
    MAX_TABLE_ID,
    KeyOp,
    KeyRange,
    decode_binary,
    decode_item_key,
    decode_key_value,
    decode_number,
    decode_string,
    encode_binary,
    encode_key_value,
    encode_number,
    encode_string,
    hash_range,
    item_key,
    key_hash,
    prefix_end,
    sort_key_range,
    successor,
    table_range,
)
from dynamo.numbers import format_number, parse_number

EXAMPLES = settings(max_examples=300, deadline=None)


def cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


# ---------------------------------------------------------------------------------------- strategies


@st.composite
def numbers(draw: st.DrawFn) -> Decimal:
    """Any storable number: 1..38 significant digits, leading-digit exponent -130..125, either sign."""
    if draw(st.integers(0, 30)) == 0:
        return Decimal(0)
    count = draw(st.integers(1, 38))
    digits = [draw(st.integers(1, 9))] + draw(
        st.lists(st.integers(0, 9), min_size=count - 1, max_size=count - 1)
    )
    leading = draw(st.integers(-130, 125))
    sign = draw(st.integers(0, 1))
    return Decimal((sign, tuple(digits), leading - count + 1))


@st.composite
def number_pairs(draw: st.DrawFn) -> tuple[Decimal, Decimal]:
    """Independent pairs, and pairs close to each other (shared digits, same exponent, sign flips)."""
    a = draw(numbers())
    how = draw(st.sampled_from(["independent", "tweak", "negate", "extend"]))
    if how == "independent" or a.is_zero():
        return a, draw(numbers())
    sign, digits, exponent = a.as_tuple()
    assert isinstance(exponent, int)
    if how == "negate":
        return a, -a
    if how == "tweak":
        position = draw(st.integers(0, len(digits) - 1))
        new = list(digits)
        new[position] = draw(st.integers(1 if position == 0 else 0, 9))
        return a, Decimal((sign, tuple(new), exponent))
    room = 38 - len(digits)
    assume(room > 0 and a.adjusted() - len(digits) >= -130)
    extra = draw(st.lists(st.integers(0, 9), min_size=1, max_size=room))
    b = Decimal((sign, (*digits, *extra), exponent - len(extra)))
    assume(b.adjusted() >= -130)
    return a, b


strings = st.text(st.characters(codec="utf-8"), max_size=12) | st.text("\x00\x01a\xff", max_size=6)
binaries = st.binary(max_size=12) | st.lists(
    st.sampled_from([b"\x00", b"\x01", b"\xff", b"a"]), max_size=6
).map(b"".join)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# ------------------------------------------------------------------------------------------- numbers


@EXAMPLES
@given(number_pairs())
def test_number_encoding_sorts_numerically(pair: tuple[Decimal, Decimal]) -> None:
    a, b = pair
    assert cmp(encode_number(a), encode_number(b)) == cmp(a, b)


@EXAMPLES
@given(numbers())
def test_number_round_trips_and_ends_itself(value: Decimal) -> None:
    encoded = encode_number(value)
    decoded, end = decode_number(encoded + b"\x00junk")
    assert end == len(encoded)
    assert decoded == value
    assert format_number(decoded) == format_number(value)
    assert encode_number(format_number(value)) == encoded


def test_equal_numbers_encode_alike() -> None:
    assert (
        encode_number("1")
        == encode_number("1.0")
        == encode_number("10E-1")
        == encode_number(Decimal("1.000"))
    )
    assert encode_number("0") == encode_number("-0") == encode_number("0.000")
    assert encode_number("-7.50") == encode_number("-75e-1")


def test_number_extremes_sort_in_order() -> None:
    ladder = [
        "-9.9999999999999999999999999999999999999E+125",
        "-1E+125",
        "-100",
        "-99.9",
        "-1",
        "-0.5",
        "-1E-130",
        "0",
        "1E-130",
        "1.0000000000000000000000000000000000001E-130",
        "0.01",
        "0.1",
        "1",
        "1.5",
        "2",
        "10",
        "99",
        "100",
        "12345678901234567890123456789012345678",
        "9.9999999999999999999999999999999999999E+125",
    ]
    encoded = [encode_number(text) for text in ladder]
    assert encoded == sorted(encoded)
    assert len(set(encoded)) == len(encoded)
    for text, data in zip(ladder, encoded, strict=True):
        assert decode_number(data)[0] == Decimal(text)


def test_number_encoding_layout_is_pinned() -> None:
    # On-disk format: changing any of these breaks every stored key.
    assert encode_number("0") == bytes([0x02])
    assert encode_number("1") == bytes([0x03, 130, 20])
    assert encode_number("12") == bytes([0x03, 131, 24])
    assert encode_number("123") == bytes([0x03, 132, 25, 60])
    assert encode_number("-1") == bytes([0x01, 255 - 130, 255 - 20])
    assert encode_number("1E-130") == bytes([0x03, 0, 20])
    assert encode_number("9E+125") == bytes([0x03, 255, 180])


@pytest.mark.parametrize("bad", ["1E+126", "1E-131", "1.00000000000000000000000000000000000001", "abc"])
def test_unstorable_numbers_are_rejected(bad: str) -> None:
    with pytest.raises(ValidationException):
        encode_number(bad)


# ------------------------------------------------------------------------------- strings and binaries


@EXAMPLES
@given(strings, strings)
def test_string_encoding_sorts_by_utf8_bytes(a: str, b: str) -> None:
    assert cmp(encode_string(a), encode_string(b)) == cmp(a.encode(), b.encode())


@EXAMPLES
@given(binaries, binaries)
def test_binary_encoding_sorts_by_unsigned_bytes(a: bytes, b: bytes) -> None:
    assert cmp(encode_binary(a), encode_binary(b)) == cmp(a, b)


@EXAMPLES
@given(strings, binaries)
def test_string_and_binary_round_trip_and_end_themselves(text: str, raw: bytes) -> None:
    data = encode_string(text) + encode_binary(raw) + b"\x00\x01tail"
    decoded_text, offset = decode_string(data)
    decoded_raw, offset = decode_binary(data, offset)
    assert (decoded_text, decoded_raw, data[offset:]) == (text, raw, b"\x00\x01tail")


def test_utf8_order_is_not_code_unit_order() -> None:
    # U+FF61 sorts below U+1F600 in UTF-16 code units but above it in UTF-8 bytes... and DynamoDB uses bytes.
    assert encode_string("\uff61") < encode_string("\U0001f600")
    assert encode_string("a") < encode_string("a\x00") < encode_string("a\x01") < encode_string("ab")


# ---------------------------------------------------------------------------------- typed key values

key_values = st.one_of(
    st.tuples(st.just("S"), strings),
    st.tuples(st.just("N"), numbers().map(format_number)),
    st.tuples(st.just("B"), binaries.map(b64)),
)


FULL = {"S": strings, "N": numbers().map(format_number), "B": binaries.map(b64)}


def dynamo_order(key_type: str, value: str) -> object:
    if key_type == "S":
        return value.encode()
    if key_type == "N":
        return parse_number(value)
    return base64.b64decode(value)


@EXAMPLES
@given(key_values)
def test_key_values_round_trip_in_wire_form(typed: tuple[str, str]) -> None:
    key_type, value = typed
    assert decode_key_value(key_type, encode_key_value(key_type, value)) == (
        value,
        len(encode_key_value(key_type, value)),
    )


@EXAMPLES
@given(st.sampled_from(["S", "N", "B"]), st.sampled_from(["S", "N", "B"]), st.data())
def test_pk_sk_tuples_sort_lexicographically(pk_type: str, sk_type: str, data: st.DataObject) -> None:
    def value(key_type: str) -> str:
        # Small alphabets make equal pks (so the sk decides) and prefix-related values likely.
        return data.draw(_of(key_type) | FULL[key_type])

    a = (value(pk_type), value(sk_type))
    b = (value(pk_type), value(sk_type))
    encoded_a = encode_key_value(pk_type, a[0]) + encode_key_value(sk_type, a[1])
    encoded_b = encode_key_value(pk_type, b[0]) + encode_key_value(sk_type, b[1])
    model_a = (dynamo_order(pk_type, a[0]), dynamo_order(sk_type, a[1]))
    model_b = (dynamo_order(pk_type, b[0]), dynamo_order(sk_type, b[1]))
    assert cmp(encoded_a, encoded_b) == cmp(model_a, model_b)


def _of(key_type: str) -> st.SearchStrategy[str]:
    if key_type == "S":
        return st.text("ab\x00\xff", max_size=3)
    if key_type == "N":
        return st.sampled_from(["-10", "-1", "-0.5", "0", "0.5", "1", "1.5", "10", "100"])
    return st.lists(st.sampled_from([b"\x00", b"\xff", b"a"]), max_size=3).map(b"".join).map(b64)


@EXAMPLES
@given(st.integers(0, MAX_TABLE_ID), st.integers(0, HASH_SPACE - 1), key_values, st.none() | key_values)
def test_item_key_decodes_to_its_parts(
    table_id: int, hash64: int, pk: tuple[str, str], sk: tuple[str, str] | None
) -> None:
    key = item_key(table_id, hash64, pk[0], pk[1], sk[0] if sk else None, sk[1] if sk else None)
    decoded = decode_item_key(key, pk[0], sk[0] if sk else None)
    assert (decoded.table_id, decoded.hash64, decoded.pk, decoded.sk) == (
        table_id,
        hash64,
        pk[1],
        sk[1] if sk else None,
    )


# ---------------------------------------------------------------------------------------- key ranges


def within(key_range: KeyRange, key: bytes) -> bool:
    return key_range.start <= key < key_range.end


def satisfies(sk_type: str, sk: str, op: KeyOp | None, values: list[str]) -> bool:
    if op is None:
        return True
    have = dynamo_order(sk_type, sk)
    want = [dynamo_order(sk_type, v) for v in values]
    if op is KeyOp.EQ:
        return have == want[0]
    if op is KeyOp.LT:
        return have < want[0]  # type: ignore[operator]
    if op is KeyOp.LE:
        return have <= want[0]  # type: ignore[operator]
    if op is KeyOp.GT:
        return have > want[0]  # type: ignore[operator]
    if op is KeyOp.GE:
        return have >= want[0]  # type: ignore[operator]
    if op is KeyOp.BETWEEN:
        return want[0] <= have <= want[1]  # type: ignore[operator]
    assert isinstance(have, bytes) and isinstance(want[0], bytes)
    return have.startswith(want[0])


@EXAMPLES
@given(
    st.sampled_from(["S", "N", "B"]),
    st.sampled_from(["S", "N", "B"]),
    st.sampled_from([None, *KeyOp]),
    st.data(),
)
def test_sort_key_range_selects_exactly_the_matching_items_of_one_pk(
    pk_type: str, sk_type: str, op: KeyOp | None, data: st.DataObject
) -> None:
    assume(not (op is KeyOp.BEGINS_WITH and sk_type == "N"))
    table_id, hash64 = 7, data.draw(st.sampled_from([0, 1, 2**63, HASH_SPACE - 1]))
    pks = data.draw(st.lists(_of(pk_type), min_size=1, max_size=4, unique=True))
    sks = data.draw(st.lists(_of(sk_type), min_size=1, max_size=8, unique=True))
    arity = 0 if op is None else 2 if op is KeyOp.BETWEEN else 1
    values = data.draw(st.lists(_of(sk_type), min_size=arity, max_size=arity))
    if op is KeyOp.BETWEEN:
        values.sort(key=lambda v: dynamo_order(sk_type, v))  # type: ignore[arg-type, return-value]
    queried = pks[0]
    key_range = sort_key_range(table_id, hash64, (pk_type, queried), sk_type, op, values)
    # Neighbours: other pks under the same hash, and the same pk in the next table and adjacent hashes.
    for pk in pks:
        for sk in sks:
            key = item_key(table_id, hash64, pk_type, pk, sk_type, sk)
            assert within(key_range, key) == (pk == queried and satisfies(sk_type, sk, op, values)), (pk, sk)
    for other_table, other_hash in [(table_id + 1, hash64), (table_id - 1, hash64)] + [
        (table_id, h) for h in (hash64 - 1, hash64 + 1) if 0 <= h < HASH_SPACE
    ]:
        for sk in sks:
            assert not within(key_range, item_key(other_table, other_hash, pk_type, queried, sk_type, sk))


def test_pk_that_extends_another_pk_never_leaks_into_its_query() -> None:
    inner = sort_key_range(1, 5, ("S", "a"), "S", None)
    assert within(inner, item_key(1, 5, "S", "a", "S", "\x00"))
    assert not within(inner, item_key(1, 5, "S", "a\x00", "S", ""))
    assert not within(inner, item_key(1, 5, "S", "ab", "S", ""))
    binary = sort_key_range(1, 5, ("B", b64(b"\xff")), "B", KeyOp.BEGINS_WITH, [b64(b"\xff")])
    assert within(binary, item_key(1, 5, "B", b64(b"\xff"), "B", b64(b"\xff\xff\x00")))
    assert not within(binary, item_key(1, 5, "B", b64(b"\xff"), "B", b64(b"\xfe")))


def test_begins_with_on_a_number_and_reversed_between_are_rejected() -> None:
    with pytest.raises(ValidationException, match="operand type: N"):
        sort_key_range(1, 0, ("S", "a"), "N", KeyOp.BEGINS_WITH, ["1"])
    with pytest.raises(ValidationException, match=r"lower bound operand: AttributeValue: \{N:5\}"):
        sort_key_range(1, 0, ("S", "a"), "N", KeyOp.BETWEEN, ["5", "3"])


@EXAMPLES
@given(
    st.integers(1, MAX_TABLE_ID - 1),
    st.integers(0, HASH_SPACE),
    st.integers(0, HASH_SPACE),
    st.integers(0, HASH_SPACE - 1),
    key_values,
)
def test_hash_range_holds_exactly_the_keys_with_hash_in_it(
    table_id: int, a: int, b: int, hash64: int, pk: tuple[str, str]
) -> None:
    lo, hi = min(a, b), max(a, b)
    key_range = hash_range(table_id, lo, hi)
    key = item_key(table_id, hash64, pk[0], pk[1])
    assert within(key_range, key) == (lo <= hash64 < hi)
    assert within(table_range(table_id), key)
    assert not within(key_range, item_key(table_id + 1, hash64, pk[0], pk[1]))
    assert not within(key_range, item_key(table_id - 1, hash64, pk[0], pk[1]))


def test_split_ranges_tile_the_parent() -> None:
    parent = hash_range(3, 0, HASH_SPACE)
    left, right = hash_range(3, 0, 2**63), hash_range(3, 2**63, HASH_SPACE)
    assert (parent.start, left.end, right.end) == (left.start, right.start, parent.end)


def test_successor_and_prefix_end() -> None:
    assert successor(b"ab") == b"ab\x00"
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff\xff") == b"b"


def test_key_range_helpers() -> None:
    whole = KeyRange(b"b", b"f")
    assert b"b" in whole and b"e\xff" in whole and b"f" not in whole and b"a" not in whole
    assert whole.intersect(KeyRange(b"a", b"c")) == KeyRange(b"b", b"c")
    assert whole.intersect(KeyRange(b"g", b"h")).empty
    assert whole.resume(b"c") == KeyRange(b"c\x00", b"f")
    assert whole.resume(b"c", reverse=True) == KeyRange(b"b", b"c")
    assert whole.resume(b"z").empty and whole.resume(b"a", reverse=True).empty
    assert key_hash(item_key(9, 12345, "S", "x", "N", "1")) == 12345
