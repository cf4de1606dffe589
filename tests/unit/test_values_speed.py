"""Validation is on the hot path of every write: a typical ~250-byte item should take ~10-20 µs.

Timing depends on the machine, so this is a slow test (run with ``-m slow``), not part of the default suite.
"""

from __future__ import annotations

import time

import pytest

from dynamo.items import KeySchema, extract_key
from dynamo.size import item_size
from dynamo.values import validate_item

TYPICAL = {
    "id": {"S": "user#12345"},
    "sk": {"S": "profile"},
    "name": {"S": "Alice Example"},
    "age": {"N": "42"},
    "score": {"N": "1234.5"},
    "active": {"BOOL": True},
    "tags": {"SS": ["a", "b", "c"]},
    "addr": {"M": {"city": {"S": "Paris"}, "zip": {"S": "75001"}}},
    "hist": {"L": [{"N": "1"}, {"N": "2"}]},
}


def best_of(runs: int, loops: int, call: object) -> float:
    assert callable(call)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(loops):
            call()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


@pytest.mark.slow
def test_typical_item_validates_in_about_ten_microseconds() -> None:
    schema = KeySchema("id", "S", "sk", "S")
    assert validate_item(TYPICAL) is TYPICAL  # nothing to normalise: no copy at all
    seconds = best_of(5, 2000, lambda: extract_key(validate_item(TYPICAL), schema))
    assert seconds < 20e-6, f"validate + key: {seconds * 1e6:.1f} µs"
    seconds = best_of(5, 2000, lambda: item_size(TYPICAL))
    assert seconds < 20e-6, f"size: {seconds * 1e6:.1f} µs"
