"""ProjectionExpression (and AttributesToGet): pick document paths out of an item.

List elements picked by index come back in index order, compacted (``l[2], l[0]`` gives a two-element
list), as DynamoDB returns them. Paths that are missing are left out. The item is not mutated; picked
values are shared with it, not copied.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeAlias

from dynamo.expressions.nodes import Item, Path, Projection

# A selection: True for "the whole value", or the selected children by map key or list index.
_Selection: TypeAlias = "bool | dict[Any, _Selection]"


@lru_cache(maxsize=1024)
def _selection(paths: tuple[Path, ...]) -> dict[Any, _Selection]:
    root: dict[Any, _Selection] = {}
    for path in paths:
        node = root
        last = len(path.elements) - 1
        for depth, element in enumerate(path.elements):
            if depth == last:
                node[element] = True
                break
            child = node.get(element)
            if child is True:
                break
            if child is None or child is False:
                child = {}
                node[element] = child
            assert isinstance(child, dict)
            node = child
    return root


def _pick(value: dict[str, Any], selection: _Selection) -> dict[str, Any] | None:
    if selection is True:
        return value
    assert isinstance(selection, dict)
    if not selection:
        return None
    if isinstance(next(iter(selection)), str):
        inner = value.get("M")
        if inner is None:
            return None
        picked: dict[str, Any] = {}
        for key, child in selection.items():
            if isinstance(key, str) and key in inner:
                sub = _pick(inner[key], child)
                if sub is not None:
                    picked[key] = sub
        return {"M": picked} if picked else None
    elements = value.get("L")
    if elements is None:
        return None
    kept = []
    for index in sorted(i for i in selection if isinstance(i, int)):
        if index < len(elements):
            sub = _pick(elements[index], selection[index])
            if sub is not None:
                kept.append(sub)
    return {"L": kept} if kept else None


def project_paths(item: Item | None, paths: tuple[Path, ...]) -> Item:
    """The parts of ``item`` at ``paths``; an empty dict if none exist."""
    if item is None or not paths:
        return {}
    result: Item = {}
    for name, selection in _selection(paths).items():
        value = item.get(name)
        if value is not None:
            picked = _pick(value, selection)
            if picked is not None:
                result[name] = picked
    return result


def project(item: Item | None, projection: Projection) -> Item:
    """Apply a resolved projection to an item."""
    return project_paths(item, projection.paths)
