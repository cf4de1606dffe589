"""storagenode.entries: a GSI's entry list stays exactly the entries of the store's items, whatever writes
are applied while it is built (the build reads keys in order, in chunks, writes land in between)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.expressions import ExpressionContext, parse_key_condition
from dynamo.indexes import IndexRead
from dynamo.items import KeySchema
from storagenode import entries
from storagenode.entries import EntryList, EntryLists

TABLE = KeySchema("pk", "S")
GSI = IndexRead("by_g", KeySchema("g", "S", "n", "N"), TABLE, True)
KEYS = [bytes([k]) for k in range(12)]


def item(g: str | None, n: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"pk": {"S": "x"}}
    if g is not None:
        out["g"] = {"S": g}
    if n is not None:
        out["n"] = {"N": str(n)}
    return out


def derived(store: dict[bytes, dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    pairs = [(GSI.entry_key(one), key) for key, one in store.items()]
    return sorted((entry, key) for entry, key in pairs if entry is not None)


items = st.one_of(st.none(), st.builds(item, st.sampled_from(["a", "b", None]), st.one_of(st.none(), st.integers(0, 4))))
writes = st.lists(st.tuples(st.sampled_from(KEYS), items), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), items.filter(lambda one: one is not None)),
       st.integers(1, 5), st.lists(writes, max_size=8), writes)
def test_built_list_matches_the_store(initial: dict[bytes, Any], chunk: int, during: list[Any], after: Any) -> None:
    store = dict(initial)
    listed = EntryList(GSI)

    def apply(key: bytes, new: dict[str, Any] | None) -> None:
        if new is None:
            store.pop(key, None)
        else:
            store[key] = new
        listed.applied(key, new)

    cursor = b""
    rounds = iter(during)
    while True:  # the build: a chunk of keys after the cursor, then (if it goes on) one loop turn's writes
        chunk_keys = sorted(key for key in store if key > cursor)[:chunk]
        for key in chunk_keys:
            assert listed.read(key, store[key])
            cursor = key
        if len(chunk_keys) < chunk:
            break  # a short chunk ends the build at once, with no turn of the loop in between (reads._rows)
        for key, new in next(rounds, []):
            apply(key, new)
    listed.built()
    assert list(listed.entries) == derived(store)
    for key, new in after:
        apply(key, new)
    assert list(listed.entries) == derived(store)


def test_select_is_the_key_condition_after_the_start() -> None:
    listed = EntryList(GSI)
    store = {KEYS[i]: item("a" if i % 3 else "b", i % 5) for i in range(12)}
    for key in sorted(store):
        listed.read(key, store[key])
    listed.built()
    cond = parse_key_condition("g = :g AND n BETWEEN :lo AND :hi", ExpressionContext(None, {
        ":g": {"S": "a"}, ":lo": {"N": "1"}, ":hi": {"N": "3"}}), "g", "n", hash_type="S", range_type="N")
    rng = GSI.entry_range(cond)
    want = [pair for pair in derived(store) if pair[0] in rng]
    assert len(want) > 3
    assert list(listed.select(rng, None, False)) == want
    assert list(listed.select(rng, None, True)) == want[::-1]
    assert list(listed.select(rng, want[1], False)) == want[2:]
    assert list(listed.select(rng, want[-2], True)) == want[:-2][::-1]


def test_bounds_on_lists(monkeypatch: Any) -> None:
    monkeypatch.setattr(entries, "MAX_ENTRIES", 2)
    listed = EntryList(GSI)
    assert listed.read(KEYS[0], item("a", 1)) and listed.read(KEYS[1], item("a", 2))
    assert not listed.read(KEYS[2], item("a", 3))  # the build gives up
    listed.give_up()
    listed.applied(KEYS[0], item("a", 9))  # a given-up list follows no writes
    assert not listed.ready and len(listed.entries) == 0 and not listed.entry_of
    monkeypatch.setattr(entries, "MAX_LISTS", 2)
    lists = EntryLists()
    first, new = lists.get(GSI)
    assert new and lists.get(GSI) == (first, False)
    other, _ = lists.get(IndexRead("other", GSI.key, TABLE, True))
    lists.get(GSI)  # by_g is now used more recently than other
    third, _ = lists.get(IndexRead("third", GSI.key, TABLE, True))
    assert lists.holds(first) and lists.holds(third) and not lists.holds(other)  # the least recently used went


def test_lists_of_deleted_indexes_go() -> None:
    from dynamo.items import IndexSchema

    lists = EntryLists()
    kept, _ = lists.get(GSI)
    gone, _ = lists.get(IndexRead("gone", GSI.key, TABLE, True))
    renamed, _ = lists.get(IndexRead("by_g", KeySchema("g", "N"), TABLE, True))  # same name, another key
    lists.keep([IndexSchema("by_g", GSI.key, True), IndexSchema("lsi", KeySchema("pk", "S", "n", "N"), False)])
    assert lists.holds(kept) and not lists.holds(gone) and not lists.holds(renamed)
