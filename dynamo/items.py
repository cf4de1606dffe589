"""Primary keys and index keys of items: the key schema, and DynamoDB's checks with their exact messages.

* ``extract_key``: PutItem (and every write that carries a whole item): the item must hold each key
  attribute, of the declared type, non-empty and within the key size limits.
* ``validate_key``: GetItem, DeleteItem, UpdateItem and batch keys: exactly the key attributes, no more.
* ``check_index_keys``: an item attribute that is an LSI or GSI key must have the index's declared type and
  must not be an empty string or binary (items without it simply stay out of the index).

Values must already be validated by ``dynamo.values`` (numbers normal, binaries canonical base64).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dynamo.errors import INVALID_PARAMETERS, ValidationException
from dynamo.size import value_size
from dynamo.values import SCALAR_TYPES

KEY_TYPES = SCALAR_TYPES  # a key attribute is an S, N or B
MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024

_NOT_VALID = "One or more parameter values are not valid. "
MSG_KEY_SCHEMA_MISMATCH = "The provided key element does not match the schema"
MSG_HASH_KEY_TOO_LARGE = INVALID_PARAMETERS + "Size of hashkey has exceeded the maximum size limit of2048 bytes"  # sic
MSG_RANGE_KEY_TOO_LARGE = (
    INVALID_PARAMETERS + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
)


@dataclass(frozen=True, slots=True)
class KeySchema:
    """A table's (or an index's) primary key: a partition ("hash") key and an optional sort ("range") key."""

    hash_name: str
    hash_type: str
    range_name: str | None = None
    range_type: str | None = None

    def __post_init__(self) -> None:
        assert self.hash_type in KEY_TYPES, self.hash_type
        assert (self.range_name is None) == (self.range_type is None), "a range key needs a name and a type"
        assert self.range_type is None or self.range_type in KEY_TYPES, self.range_type
        assert self.range_name != self.hash_name, "hash and range keys must differ"

    @classmethod
    def from_wire(
        cls, key_schema: Iterable[Mapping[str, str]], definitions: Iterable[Mapping[str, str]]
    ) -> KeySchema:
        """Build from a (validated) CreateTable ``KeySchema`` list and its ``AttributeDefinitions``."""
        types = {d["AttributeName"]: d["AttributeType"] for d in definitions}
        by_role = {element["KeyType"]: element["AttributeName"] for element in key_schema}
        hash_name, range_name = by_role["HASH"], by_role.get("RANGE")
        return cls(hash_name, types[hash_name], range_name, None if range_name is None else types[range_name])

    @property
    def names(self) -> tuple[str, ...]:
        if self.range_name is None:
            return (self.hash_name,)
        return (self.hash_name, self.range_name)

    def attributes(self) -> tuple[tuple[str, str, bool], ...]:
        """(name, type, is_hash) of each key attribute, hash first."""
        if self.range_name is None or self.range_type is None:
            return ((self.hash_name, self.hash_type, True),)
        return ((self.hash_name, self.hash_type, True), (self.range_name, self.range_type, False))


@dataclass(frozen=True, slots=True)
class IndexSchema:
    """A secondary index: its name, its key, and whether it is global (GSI) or local (LSI)."""

    name: str
    key: KeySchema
    is_global: bool
    projection: str = "ALL"  # the ProjectionType: ALL, KEYS_ONLY or INCLUDE
    non_key: tuple[str, ...] = ()  # INCLUDE's NonKeyAttributes


def key_value_bytes(av: dict[str, Any]) -> int:
    """The size a key value counts against the key limits: S and B as the item size counts them (UTF-8
    bytes, raw bytes), N by the length of its text."""
    ((tag, v),) = av.items()
    if tag == "N":
        return len(v)
    return value_size(av)


def _check_key_value(name: str, tag: str, value: str, is_hash: bool, av: dict[str, Any]) -> None:
    if tag == "S" and not value:
        raise ValidationException(
            _NOT_VALID
            + f"The AttributeValue for a key attribute cannot contain an empty string value. Key: {name}"
        )
    if tag == "B" and not value:
        raise ValidationException(
            _NOT_VALID
            + f"The AttributeValue for a key attribute cannot contain an empty binary value. Key: {name}"
        )
    if is_hash:
        if len(value) > MAX_HASH_KEY_BYTES // 4 and key_value_bytes(av) > MAX_HASH_KEY_BYTES:
            raise ValidationException(MSG_HASH_KEY_TOO_LARGE)
    elif len(value) > MAX_RANGE_KEY_BYTES // 4 and key_value_bytes(av) > MAX_RANGE_KEY_BYTES:
        raise ValidationException(MSG_RANGE_KEY_TOO_LARGE)


def extract_key(
    item: dict[str, dict[str, Any]], schema: KeySchema, *, batch_write: bool = False
) -> dict[str, dict[str, Any]]:
    """The primary key of an item to be written, checked as PutItem checks it.

    ``batch_write``: BatchWriteItem's PutRequest reports a missing or mistyped key attribute as
    "The provided key element does not match the schema" instead of PutItem's precise messages.
    """
    key: dict[str, dict[str, Any]] = {}
    for name, expected, is_hash in schema.attributes():
        av = item.get(name)
        if av is None:
            if batch_write:
                raise ValidationException(MSG_KEY_SCHEMA_MISMATCH)
            raise ValidationException(f"{INVALID_PARAMETERS}Missing the key {name} in the item")
        ((tag, value),) = av.items()
        if tag != expected:
            if batch_write:
                raise ValidationException(MSG_KEY_SCHEMA_MISMATCH)
            raise ValidationException(
                f"{INVALID_PARAMETERS}Type mismatch for key {name} expected: {expected} actual: {tag}"
            )
        _check_key_value(name, tag, value, is_hash, av)
        key[name] = av
    return key


def validate_key(key: dict[str, dict[str, Any]], schema: KeySchema) -> dict[str, dict[str, Any]]:
    """Check a Key parameter (GetItem, DeleteItem, UpdateItem, batches) against the key schema; answer it.

    Missing, extra or mistyped attributes are all "The provided key element does not match the schema".
    """
    attributes = schema.attributes()
    if len(key) != len(attributes):
        raise ValidationException(MSG_KEY_SCHEMA_MISMATCH)
    for name, expected, _ in attributes:
        av = key.get(name)
        if av is None or expected not in av:
            raise ValidationException(MSG_KEY_SCHEMA_MISMATCH)
    for name, expected, is_hash in attributes:
        av = key[name]
        _check_key_value(name, expected, av[expected], is_hash, av)
    return key


def check_index_keys(
    item: dict[str, dict[str, Any]], indexes: Iterable[IndexSchema], *, update_expression: bool = False
) -> None:
    """Check the item's attributes that are keys of secondary indexes, as every write does.

    Types are checked across all indexes before emptiness, and indexes in name order, so the first index
    (alphabetically) that an attribute keys is the one named, as DynamoDB reports it.
    ``update_expression``: the item is the result of an UpdateExpression, which words an empty index key
    differently.
    """
    ordered = sorted(indexes, key=lambda index: index.name)
    for index in ordered:
        for name, expected, _ in index.key.attributes():
            av = item.get(name)
            if av is None:
                continue  # the item is simply not in this (sparse) index
            ((tag, _value),) = av.items()
            if tag != expected:
                raise ValidationException(
                    f"{INVALID_PARAMETERS}Type mismatch for Index Key {name} Expected: {expected} Actual: {tag} "
                    f"IndexName: {index.name}"
                )
    for index in ordered:
        for name, _, _ in index.key.attributes():
            av = item.get(name)
            if av is None:
                continue
            ((tag, value),) = av.items()
            if (tag == "S" or tag == "B") and not value:
                kind = "string" if tag == "S" else "binary"
                if update_expression:
                    raise ValidationException(
                        _NOT_VALID + "The update expression attempted to update a secondary index key to a "
                        "value that is not supported. "
                        f"The AttributeValue for a key attribute cannot contain an empty {kind} value."
                    )
                raise ValidationException(
                    _NOT_VALID + "A value specified for a secondary index key is not supported. "
                    f"The AttributeValue for a key attribute cannot contain an empty {kind} value. "
                    f"IndexName: {index.name}, IndexKey: {name}"
                )


def key_of(item: dict[str, dict[str, Any]], schema: KeySchema) -> dict[str, dict[str, Any]]:
    """The key attributes of a stored (already checked) item."""
    return {name: item[name] for name in schema.names}


def index_key_of(item: dict[str, dict[str, Any]], index: IndexSchema) -> dict[str, dict[str, Any]] | None:
    """The item's key in ``index``, or None when the item lacks an index key attribute (not indexed)."""
    key: dict[str, dict[str, Any]] = {}
    for name in index.key.names:
        av = item.get(name)
        if av is None:
            return None
        key[name] = av
    return key


def key_identity(key: dict[str, dict[str, Any]], schema: KeySchema) -> tuple[str, ...]:
    """A hashable identity of a validated key: equal for equal keys (e.g. to find duplicates in a batch).

    Normal-form numbers and canonical base64 make equal values equal text.
    """
    return tuple(key[name][expected] for name, expected, _ in schema.attributes())
