"""The chaos append workload's stream check: a stream that tells each key's story as the history does passes;
a record lost, doubled, out of order or invented, an acknowledged append missing, a failed one present, or
an end that disagrees with the final read, each fails it."""

from __future__ import annotations

from deploy.chaos.checker import FINAL_CLIENT
from deploy.chaos.history import History, Op, OpKind, Outcome
from deploy.chaos.streams import check_stream

OK, FAIL, INFO = Outcome.OK, Outcome.FAIL, Outcome.INFO


def history(final: list[str] | None = None) -> History:
    ops = [
        Op(0, 1, OpKind.APPEND, "k", "a", 0, 1, OK),
        Op(1, 2, OpKind.APPEND, "k", "b", 1, 2, OK),
        Op(2, 1, OpKind.APPEND, "k", "c", 2, 3, INFO),  # may or may not have landed
        Op(3, 2, OpKind.APPEND, "k", "d", 3, 4, FAIL),  # definitely not applied
        Op(4, 1, OpKind.APPEND, "k", "e", 4, 5, OK),
    ]
    ops.append(Op(5, FINAL_CLIENT, OpKind.READ, "k", None, 6, 7, OK, final if final is not None else ["a", "b", "c", "e"]))
    return History(ops)


GOOD = {"k": [["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "e"]]}


def test_a_faithful_stream_passes_with_or_without_the_indeterminate_append() -> None:
    assert check_stream(history(), GOOD) == []
    without = {"k": [["a"], ["a", "b"], ["a", "b", "e"]]}
    assert check_stream(history(final=["a", "b", "e"]), without) == []


def test_every_broken_variant_is_caught() -> None:
    variants = {
        "a record lost": {"k": [["a"], ["a", "b", "c"], ["a", "b", "c", "e"]]},
        "a record doubled": {"k": [["a"], ["a", "b"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "e"]]},
        "out of order": {"k": [["a"], ["a", "b", "c"], ["a", "b"], ["a", "b", "c", "e"]]},
        "invented": {"k": [*GOOD["k"], ["a", "b", "c", "e", "zz"]]},
        "failed append present": {"k": [*GOOD["k"], ["a", "b", "c", "e", "d"]]},
        "acknowledged append missing": {"k": GOOD["k"][:3]},
        "no records at all": {},
    }
    for what, lists in variants.items():
        assert check_stream(history(), lists), f"{what} was not caught"
    assert check_stream(history(final=["a", "b", "c"]), GOOD), "an end unlike the final read was not caught"
