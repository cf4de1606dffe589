"""Apply a resolved UpdateExpression (or translated AttributeUpdates) to an item.

DynamoDB's order of events: every SET right-hand side is read from the *old* item first; then SET, ADD
and DELETE write; REMOVE goes last, highest list index first, so list indexes in one expression all
refer to positions in the old item. A SET on a list index past the end appends, in index order.

The input item is never mutated: the new item is a shallow copy, and each container on a written path
is copied once before it is changed.
"""

from __future__ import annotations

from typing import Any

from dynamo.errors import INVALID_PARAMETERS, ValidationException
from dynamo.expressions.evaluate import get_path
from dynamo.expressions.nodes import (
    Action,
    ActionKind,
    Arith,
    Call,
    Item,
    Operand,
    Path,
    PathElement,
    Update,
    Value,
)
from dynamo.expressions.project import project_paths
from dynamo.numbers import add, format_number, subtract
from dynamo.values import SET_TYPES, number_value, set_member_key, value_type

MSG_INVALID_PATH = "The document path provided in the update expression is invalid for update"
MSG_MISSING = "The provided expression refers to an attribute that does not exist in the item"
MSG_DATA_TYPE = "An operand in the update expression has an incorrect data type"
MSG_LEGACY_TYPE = INVALID_PARAMETERS + "Type mismatch for attribute to update"


def _key_error(name: str) -> ValidationException:
    return ValidationException(
        f"{INVALID_PARAMETERS}Cannot update attribute {name}. This attribute is part of the key"
    )


def check_key_untouched(update: Update, key: Item) -> None:
    """Refuse an update of a key attribute: known from the expression alone, before any item is read."""
    for action in update.actions:
        name = action.path.elements[0]
        if name in key:
            raise _key_error(str(name))


def _set_value(operand: Operand, item: Item | None) -> dict[str, Any]:
    if isinstance(operand, Value):
        assert operand.value is not None
        return operand.value
    if isinstance(operand, Path):
        value = get_path(item, operand.elements)
        if value is None:
            raise ValidationException(MSG_MISSING)
        return value
    if isinstance(operand, Arith):
        left = _set_value(operand.left, item)
        right = _set_value(operand.right, item)
        if value_type(left) != "N" or value_type(right) != "N":
            raise ValidationException(MSG_DATA_TYPE)
        combine = add if operand.op == "+" else subtract
        return {"N": format_number(combine(number_value(left), number_value(right)))}
    assert isinstance(operand, Call)
    if operand.name == "if_not_exists":
        first = operand.args[0]
        assert isinstance(first, Path)
        existing = get_path(item, first.elements)
        return existing if existing is not None else _set_value(operand.args[1], item)
    assert operand.name == "list_append", operand.name
    left = _set_value(operand.args[0], item)
    right = _set_value(operand.args[1], item)
    if value_type(left) != "L" or value_type(right) != "L":
        raise ValidationException(MSG_DATA_TYPE)
    return {"L": [*left["L"], *right["L"]]}


class _Writer:
    """Copy-on-write access to the new item's nested containers."""

    def __init__(self, new_item: Item) -> None:
        self.item = new_item
        self.fresh: set[int] = set()  # ids of containers this update created (safe to mutate)
        self.alive: list[dict[str, Any]] = []  # keeps those ids from being reused

    def _own(self, value: dict[str, Any]) -> dict[str, Any]:
        """A copy of an attribute value whose container (M dict or L list) this update may mutate."""
        if id(value) in self.fresh:
            return value
        kind = value_type(value)
        inner = value[kind]
        copy = {kind: dict(inner) if kind == "M" else list(inner)}
        self.fresh.add(id(copy))
        self.alive.append(copy)
        return copy

    def parent(self, elements: tuple[PathElement, ...]) -> dict[str, Any] | None:
        """The owned container value (``{"M": ...}`` or ``{"L": ...}``) holding the last element, or
        None for a top-level path. Raises the invalid-path error if a step is missing or of a wrong type."""
        if len(elements) == 1:
            return None
        name = elements[0]
        assert isinstance(name, str)
        current = self.item.get(name)
        if current is None:
            raise ValidationException(MSG_INVALID_PATH)
        current = self._fit(current, elements[1])
        self.item[name] = current
        for depth in range(1, len(elements) - 1):
            element = elements[depth]
            child = self._child(current, element)
            if child is None:
                raise ValidationException(MSG_INVALID_PATH)
            child = self._fit(child, elements[depth + 1])
            self._store(current, element, child)
            current = child
        return current

    def _fit(self, value: dict[str, Any], next_element: PathElement) -> dict[str, Any]:
        wanted = "M" if isinstance(next_element, str) else "L"
        if wanted not in value:
            raise ValidationException(MSG_INVALID_PATH)
        return self._own(value)

    @staticmethod
    def _child(container: dict[str, Any], element: PathElement) -> dict[str, Any] | None:
        if isinstance(element, str):
            result: dict[str, Any] | None = container["M"].get(element)
            return result
        elements = container["L"]
        return elements[element] if element < len(elements) else None

    @staticmethod
    def _store(container: dict[str, Any], element: PathElement, value: dict[str, Any]) -> None:
        if isinstance(element, str):
            container["M"][element] = value
        else:
            container["L"][element] = value

    def get(self, elements: tuple[PathElement, ...]) -> dict[str, Any] | None:
        return get_path(self.item, elements)

    def put(self, elements: tuple[PathElement, ...], value: dict[str, Any], appends: list[tuple[Any, int, Any]]) -> None:
        container = self.parent(elements)
        last = elements[-1]
        if container is None:
            assert isinstance(last, str)
            self.item[last] = value
        elif isinstance(last, str):
            container["M"][last] = value
        elif last < len(container["L"]):
            container["L"][last] = value
        else:
            appends.append((container["L"], last, value))

    def delete(self, elements: tuple[PathElement, ...]) -> None:
        container = self.parent(elements)
        last = elements[-1]
        if container is None:
            assert isinstance(last, str)
            self.item.pop(last, None)
        elif isinstance(last, str):
            container["M"].pop(last, None)
        elif last < len(container["L"]):
            del container["L"][last]


def _add(existing: dict[str, Any] | None, operand: dict[str, Any], legacy: bool) -> dict[str, Any]:
    if existing is None:
        return operand
    kind, other = value_type(existing), value_type(operand)
    mismatch = ValidationException(MSG_LEGACY_TYPE if legacy else MSG_DATA_TYPE)
    if kind != other:
        raise mismatch
    if kind == "N":
        return {"N": format_number(add(number_value(existing), number_value(operand)))}
    if kind in SET_TYPES:
        merged = list(existing[kind])
        present = {set_member_key(kind, e) for e in merged}
        for element in operand[kind]:
            key = set_member_key(kind, element)
            if key not in present:
                present.add(key)
                merged.append(element)
        return {kind: merged}
    if kind == "L" and legacy:
        return {"L": [*existing["L"], *operand["L"]]}
    raise mismatch


def _delete(existing: dict[str, Any], operand: dict[str, Any], legacy: bool) -> dict[str, Any] | None:
    kind = value_type(existing)
    if kind != value_type(operand) or kind not in SET_TYPES:
        raise ValidationException(MSG_LEGACY_TYPE if legacy else MSG_DATA_TYPE)
    removed = {set_member_key(kind, e) for e in operand[kind]}
    kept = [e for e in existing[kind] if set_member_key(kind, e) not in removed]
    return {kind: kept} if kept else None


def apply_update(item: Item | None, update: Update, key: Item) -> tuple[Item, Item, Item]:
    """Apply ``update`` to ``item`` (None if absent) with primary key ``key``.

    Returns ``(new_item, updated_old, updated_new)``: the new item, and the parts of the old and new
    item at the paths the update touched (ReturnValues UPDATED_OLD / UPDATED_NEW).
    """
    check_key_untouched(update, key)
    # Read every right-hand side before anything is written.
    values: list[dict[str, Any] | None] = []
    for action in update.actions:
        if action.kind is ActionKind.SET:
            assert action.value is not None
            values.append(_set_value(action.value, item))
        elif action.value is not None:
            assert isinstance(action.value, Value) and action.value.value is not None
            values.append(action.value.value)
        else:
            values.append(None)
    writer = _Writer(dict(item) if item is not None else dict(key))
    appends: list[tuple[Any, int, Any]] = []
    removes: list[Action] = []
    for action, value in zip(update.actions, values, strict=True):
        elements = action.path.elements
        if action.kind is ActionKind.SET:
            assert value is not None
            writer.put(elements, value, appends)
        elif action.kind is ActionKind.ADD:
            assert value is not None
            if item is None and len(elements) > 1:
                raise ValidationException(MSG_INVALID_PATH)
            writer.put(elements, _add(writer.get(elements), value, action.legacy), appends)
        elif action.kind is ActionKind.DELETE:
            assert value is not None
            existing = writer.get(elements)
            if existing is None:
                if item is not None and len(elements) > 1:
                    writer.parent(elements)  # raises if the path's parent is not there
                continue
            remaining = _delete(existing, value, action.legacy)
            if remaining is None:
                removes.append(action)
            else:
                writer.put(elements, remaining, appends)
        else:
            removes.append(action)
    # Appends past a list's end land in index order, whatever the order of the actions.
    for target, _, value in sorted(appends, key=lambda entry: entry[1]):
        target.append(value)
    if item is not None:
        # Highest index first so every index means a position in the old list.
        for action in sorted(removes, key=_remove_order):
            writer.delete(action.path.elements)
    paths = tuple(a.path for a in update.actions)
    return writer.item, project_paths(item, paths), project_paths(writer.item, paths)


def _remove_order(action: Action) -> tuple[Any, ...]:
    """Sort key putting, among paths into the same list, higher indexes first."""
    return tuple((0, e) if isinstance(e, str) else (1, -e) for e in action.path.elements)
