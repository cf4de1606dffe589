"""The storage node's descendant look-up (``storagenode.node._Spans``) against a brute-force scan."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storagenode.node import _Spans

span = st.tuples(st.integers(1, 2), st.integers(0, 20), st.integers(1, 20)).filter(lambda s: s[1] < s[2])


@settings(max_examples=200, deadline=None)
@given(st.lists(span, max_size=12), span)
def test_a_descendant_is_a_strictly_nested_range_of_the_same_table(spans: list[tuple[int, int, int]],
                                                                     probe: tuple[int, int, int]) -> None:
    table_id, lo, hi = probe
    expected = any(t == table_id and lo <= s_lo and s_hi <= hi and (s_lo, s_hi) != (lo, hi)
                   for t, s_lo, s_hi in spans)
    assert _Spans(spans).has_descendant(table_id, lo, hi) == expected


def test_a_split_parent_has_its_children_as_descendants_and_not_the_reverse() -> None:
    spans = _Spans([(4, 0, 100), (4, 0, 50), (4, 50, 100), (5, 10, 20)])
    assert spans.has_descendant(4, 0, 100)
    assert not spans.has_descendant(4, 0, 50) and not spans.has_descendant(4, 50, 100)
    assert not spans.has_descendant(5, 10, 20) and not spans.has_descendant(6, 0, 100)
