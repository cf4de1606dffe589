"""Request shapes and the two passes DynamoDB runs over every request body, in its order and words.

Pass 1, ``check_types``: each present field must have the JSON type its shape says, or the whole request is a
``SerializationException`` with the Java deserializer's words ("NUMBER_VALUE cannot be converted to String",
"Unexpected field type", ...). Fields the shape does not know and fields set to JSON null are dropped, as
DynamoDB ignores them; numbers given for integer fields are floored as its deserializer does.

Pass 2, ``check_constraints``: every constraint of every field is checked and the failures are aggregated into
one ``ValidationException``: "2 validation errors detected: Value null at 'keySchema' failed to satisfy
constraint: Member must not be null; ...". Paths use lower-camel names, list members are ``name.N.member``
(1-based) and map values ``name.KEY.member``. At most ``MAX_REPORTED_ERRORS`` are reported.

A shape is data (a frozen dataclass tree), so an operation's request is declared once, in DynamoDB's field
order, and both passes walk it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from dynamo.errors import SerializationException, ValidationException
from dynamo.values import MSG_STRUCT_NOT_EXPECTED, MSG_UNEXPECTED_FIELD, MSG_UNEXPECTED_VALUE, wire_type_error

MAX_REPORTED_ERRORS = 10
_MODEL_PACKAGE = "com.amazonaws.dynamodb.v20120810."


class Kind(Enum):
    STRING = "String"
    LONG = "Long"
    INTEGER = "Integer"
    BOOLEAN = "Boolean"
    LIST = "List"
    MAP = "Map"
    STRUCT = "Struct"
    # One DynamoDB AttributeValue ({"S": "x"}): only its outer object is checked here; what is inside is
    # checked by dynamo.requests.attributes (the call point for the shared value validator).
    ATTRIBUTE_VALUE = "AttributeValue"


@dataclass(frozen=True, slots=True)
class Shape:
    kind: Kind
    # Java model class for structures ("KeySchemaElement"), used in messages and value renderings.
    model_name: str = ""
    fields: tuple[tuple[str, Shape], ...] = ()
    member: Shape | None = None
    # DynamoDB's deserializer words a scalar in place of a "value struct" differently from a "field struct".
    value_struct: bool = False
    not_null: bool = False
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    enum: tuple[str, ...] = ()
    # MAP only: constraints on the keys (RequestItems' table names), reported for the whole map as "Map keys
    # must satisfy constraint: [...]" with the map echoed as JSON.
    keys: Shape | None = None
    # MAP only: a value breaking its own length bounds is reported for the whole map as "Map value must
    # satisfy constraint: [...]" (BatchWriteItem), not at the member's path.
    values_reported_on_map: bool = False
    # Derived once, so the hot path walks only what can fail (children are built before their parents).
    _compiled: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)
    _by_name: dict[str, Shape] = field(default_factory=dict, init=False, compare=False, repr=False)
    # (name, lower-camel path name, shape) of the fields the constraint pass must visit.
    _plan: tuple[tuple[str, str, Shape], ...] = field(default=(), init=False, compare=False, repr=False)
    # Whether a present value of this shape has anything to check.
    _checked: bool = field(default=False, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "_compiled", re.compile(self.pattern))
        own = bool(self.enum) or self.pattern is not None
        own = own or self.min_length is not None or self.max_length is not None
        own = own or self.min_value is not None or self.max_value is not None
        if self.kind is Kind.STRUCT:
            object.__setattr__(self, "_by_name", dict(self.fields))
            plan = tuple(
                (name, lower_first(name), child)
                for name, child in self.fields
                if child.not_null or child._checked
            )
            object.__setattr__(self, "_plan", plan)
            own = own or bool(plan)
        elif self.member is not None:
            own = own or self.member.not_null or self.member._checked or self.keys is not None
        object.__setattr__(self, "_checked", own)

    def field_map(self) -> Mapping[str, Shape]:
        return self._by_name


# ---- constructors: a request reads like DynamoDB's API reference ----------------------------------------


def string(
    *,
    not_null: bool = False,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    enum: tuple[str, ...] = (),
) -> Shape:
    return Shape(
        Kind.STRING,
        not_null=not_null,
        pattern=pattern,
        min_length=min_length,
        max_length=max_length,
        enum=enum,
    )


def long(*, not_null: bool = False, min_value: int | None = None, max_value: int | None = None) -> Shape:
    return Shape(Kind.LONG, not_null=not_null, min_value=min_value, max_value=max_value)


def integer(*, not_null: bool = False, min_value: int | None = None, max_value: int | None = None) -> Shape:
    return Shape(Kind.INTEGER, not_null=not_null, min_value=min_value, max_value=max_value)


def boolean(*, not_null: bool = False) -> Shape:
    return Shape(Kind.BOOLEAN, not_null=not_null)


def _member(shape: Shape) -> Shape:
    """A null inside a list or map is "Value null at 'x.1.member'"; AttributeValues are left to the value
    validator, which words a null one its own way."""
    if shape.kind is Kind.ATTRIBUTE_VALUE or shape.not_null:
        return shape
    return replace(shape, not_null=True)


def list_of(
    member: Shape, *, not_null: bool = False, min_length: int | None = None, max_length: int | None = None
) -> Shape:
    return Shape(
        Kind.LIST, member=_member(member), not_null=not_null, min_length=min_length, max_length=max_length
    )


def map_of(
    member: Shape,
    model_name: str,
    *,
    not_null: bool = False,
    min_length: int | None = None,
    max_length: int | None = None,
    keys: Shape | None = None,
    values_reported_on_map: bool = False,
) -> Shape:
    """``model_name`` is the Java value type DynamoDB names when a list stands where the map should be."""
    return Shape(
        Kind.MAP,
        member=_member(member),
        model_name=model_name,
        not_null=not_null,
        min_length=min_length,
        max_length=max_length,
        keys=keys,
        values_reported_on_map=values_reported_on_map,
    )


def struct(model_name: str, *fields: tuple[str, Shape], not_null: bool = False, value: bool = False) -> Shape:
    return Shape(Kind.STRUCT, model_name=model_name, fields=fields, not_null=not_null, value_struct=value)


def attribute_value(*, not_null: bool = False) -> Shape:
    return Shape(Kind.ATTRIBUTE_VALUE, model_name="AttributeValue", not_null=not_null, value_struct=True)


def item(*, not_null: bool = False) -> Shape:
    """A map of attribute name to AttributeValue (Item, Key, ExclusiveStartKey...)."""
    return map_of(attribute_value(), _MODEL_PACKAGE + "AttributeValue", not_null=not_null)


# ---- pass 1: types ---------------------------------------------------------------------------------------


def check_types(data: Any, shape: Shape) -> dict[str, Any]:
    """Check a whole request body (a JSON object) against its struct shape; return the cleaned copy."""
    assert shape.kind is Kind.STRUCT
    if not isinstance(data, dict):
        # A body that is valid JSON but not an object: DynamoDB cannot start deserialising the request.
        raise SerializationException("Start of list found where not expected" if isinstance(data, list) else "")
    return _check_struct_fields(data, shape)


def _check_struct_fields(data: dict[str, Any], shape: Shape) -> dict[str, Any]:
    # In body order, as DynamoDB's streaming deserializer meets the fields.
    by_name = shape._by_name
    cleaned: dict[str, Any] = {}
    for name, value in data.items():
        child = by_name.get(name)
        if child is None or value is None:
            continue
        cleaned[name] = _check_type(value, child)
    return cleaned


def _check_type(value: Any, shape: Shape) -> Any:
    kind = shape.kind
    if kind is Kind.STRING:
        if isinstance(value, str):
            return value
        raise wire_type_error(value, "String")
    if kind is Kind.LONG or kind is Kind.INTEGER:
        if isinstance(value, bool):
            raise wire_type_error(value, kind.value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            # The deserializer truncates a JSON decimal given for an integer field.
            return int(value // 1)
        raise wire_type_error(value, kind.value)
    if kind is Kind.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            # Jackson accepts the text forms of a boolean; anything else is refused, upper-cased.
            lowered = value.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            raise SerializationException(f"'{value.upper()}' can not be converted to an Boolean")
        raise wire_type_error(value, "Boolean")
    if kind is Kind.LIST:
        if isinstance(value, list):
            assert shape.member is not None
            return [None if member is None else _check_type(member, shape.member) for member in value]
        if isinstance(value, dict):
            raise SerializationException(MSG_STRUCT_NOT_EXPECTED)
        raise SerializationException(MSG_UNEXPECTED_FIELD)
    if kind is Kind.MAP:
        if isinstance(value, dict):
            assert shape.member is not None
            if shape.member.kind is Kind.ATTRIBUTE_VALUE:
                # The hot case (Item, Key): keep the client's dict, only its values' outer type is ours.
                for member in value.values():
                    if member is not None and not isinstance(member, dict):
                        _check_type(member, shape.member)
                return value
            return {
                key: None if member is None else _check_type(member, shape.member)
                for key, member in value.items()
            }
        if isinstance(value, list):
            raise SerializationException(
                f"Unrecognized collection type java.util.Map<java.lang.String, {shape.model_name}>"
            )
        raise SerializationException(MSG_UNEXPECTED_FIELD)
    if kind is Kind.STRUCT or kind is Kind.ATTRIBUTE_VALUE:
        if isinstance(value, dict):
            if kind is Kind.ATTRIBUTE_VALUE:
                return value
            return _check_struct_fields(value, shape)
        if isinstance(value, list):
            raise SerializationException(f"Unrecognized collection type class {_MODEL_PACKAGE}{shape.model_name}")
        raise SerializationException(
            MSG_UNEXPECTED_VALUE if shape.value_struct else MSG_UNEXPECTED_FIELD
        )
    raise AssertionError(f"unhandled shape kind {kind}")  # pragma: no cover


# ---- pass 2: constraints ---------------------------------------------------------------------------------


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def render_value(value: Any, shape: Shape | None = None) -> str:
    """A value as DynamoDB's Java side prints it inside "Value '...' at ...": lists as [a, b], structures
    as Name(field=value, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        member = shape.member if shape is not None else None
        return "[" + ", ".join(render_value(v, member) for v in value) + "]"
    if isinstance(value, dict):
        if shape is not None and shape.kind is Kind.STRUCT:
            parts = [
                f"{lower_first(name)}={render_value(value.get(name), child)}" for name, child in shape.fields
            ]
            return f"{shape.model_name}({', '.join(parts)})"
        member = shape.member if shape is not None and shape.kind is Kind.MAP else None
        return "{" + ", ".join(f"{k}={render_value(v, member)}" for k, v in value.items()) + "}"
    return str(value)


class _Errors:
    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages: list[str] = []

    def full(self) -> bool:
        return len(self.messages) >= MAX_REPORTED_ERRORS

    def add(self, value: Any, shape: Shape, path: str, constraint: str) -> None:
        if self.full():
            return
        shown = "null" if value is None else f"'{render_value(value, shape)}'"
        self.messages.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")


def constraint_messages(data: Mapping[str, Any], shape: Shape) -> list[str]:
    """Every constraint failure of a (type-checked) request, in DynamoDB's order, at most MAX_REPORTED_ERRORS."""
    errors = _Errors()
    _check_fields(data, shape, "", errors)
    return errors.messages


def aggregate(messages: list[str]) -> ValidationException:
    count = len(messages)
    noun = "error" if count == 1 else "errors"
    return ValidationException(f"{count} validation {noun} detected: " + "; ".join(messages))


def check_constraints(data: Mapping[str, Any], shape: Shape) -> None:
    messages = constraint_messages(data, shape)
    if messages:
        raise aggregate(messages)


def _check_fields(data: Mapping[str, Any], shape: Shape, prefix: str, errors: _Errors) -> None:
    for name, path_name, child in shape._plan:
        if errors.full():
            return
        value = data.get(name)
        if value is None and not child.not_null:
            continue
        _check_value(value, child, prefix + path_name, errors)


def _length(value: Any) -> int:
    return len(value)


def _check_value(value: Any, shape: Shape, path: str, errors: _Errors) -> None:
    if value is None:
        if shape.not_null:
            errors.add(None, shape, path, "Member must not be null")
        return
    if not shape._checked:
        return
    if shape.enum and value not in shape.enum:
        errors.add(value, shape, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    if shape._compiled is not None and shape._compiled.fullmatch(value) is None:
        errors.add(value, shape, path, f"Member must satisfy regular expression pattern: {shape.pattern}")
    if shape.min_length is not None and _length(value) < shape.min_length:
        errors.add(value, shape, path, f"Member must have length greater than or equal to {shape.min_length}")
    if shape.max_length is not None and _length(value) > shape.max_length:
        errors.add(value, shape, path, f"Member must have length less than or equal to {shape.max_length}")
    if shape.min_value is not None and value < shape.min_value:
        errors.add(value, shape, path, f"Member must have value greater than or equal to {shape.min_value}")
    if shape.max_value is not None and value > shape.max_value:
        errors.add(value, shape, path, f"Member must have value less than or equal to {shape.max_value}")
    member_shape = shape.member
    if member_shape is not None and not (member_shape._checked or member_shape.not_null or shape.keys):
        return
    if shape.kind is Kind.LIST:
        assert shape.member is not None
        for index, member in enumerate(value, start=1):
            if errors.full():
                return
            _check_value(member, shape.member, f"{path}.{index}.member", errors)
    elif shape.kind is Kind.MAP:
        _check_map(value, shape, path, errors)
    elif shape.kind is Kind.STRUCT:
        _check_fields(value, shape, path + ".", errors)


def _length_constraints(shape: Shape) -> list[str]:
    listed = []
    if shape.max_length is not None:
        listed.append(f"Member must have length less than or equal to {shape.max_length}")
    if shape.min_length is not None:
        listed.append(f"Member must have length greater than or equal to {shape.min_length}")
    if shape.pattern is not None:
        listed.append(f"Member must satisfy regular expression pattern: {shape.pattern}")
    return listed


def _breaks(value: Any, shape: Shape) -> bool:
    if shape.min_length is not None and len(value) < shape.min_length:
        return True
    if shape.max_length is not None and len(value) > shape.max_length:
        return True
    return shape._compiled is not None and shape._compiled.fullmatch(value) is None


def _check_map(value: dict[str, Any], shape: Shape, path: str, errors: _Errors) -> None:
    member_shape = shape.member
    assert member_shape is not None
    keys = shape.keys
    if keys is not None and any(_breaks(key, keys) for key in value):
        constraints = ", ".join(_length_constraints(keys))
        if not errors.full():
            shown = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            errors.messages.append(
                f"Value '{shown}' at '{path}' failed to satisfy constraint: Map keys must satisfy constraint: "
                f"[{constraints}]"
            )
    if shape.values_reported_on_map and any(
        member is not None and _breaks(member, member_shape) for member in value.values()
    ):
        if not errors.full():
            constraints = ", ".join(_length_constraints(member_shape))
            errors.messages.append(
                f"Value '{render_value(value, shape)}' at '{path}' failed to satisfy constraint: Map value must "
                f"satisfy constraint: [{constraints}]"
            )
        return
    for key, member in value.items():
        if errors.full():
            return
        _check_value(member, member_shape, f"{path}.{key}.member", errors)


# ---- one operation's validator ---------------------------------------------------------------------------

# A semantic check runs after both passes succeeded, on the cleaned request; it raises a DynamoError.
SemanticCheck = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    shape: Shape
    # Fields whose absence DynamoDB reports on its own, before any constraint ("The parameter 'TableName' is
    # required but was not present in the request"), as CreateTable does for TableName.
    required: tuple[str, ...] = ()
    semantic: tuple[SemanticCheck, ...] = ()

    def validate(self, body: Any) -> dict[str, Any]:
        request = check_types(body, self.shape)
        for name in self.required:
            if name not in request:
                raise ValidationException(
                    f"The parameter '{name}' is required but was not present in the request"
                )
        check_constraints(request, self.shape)
        for check in self.semantic:
            check(request)
        return request
