"""DynamoDB Streams, the pure parts: stream labels and ARNs, shard ids, sequence numbers, the change record a
write makes, the records GetRecords answers with, and shard iterators.

A stream's label is the time it was enabled, to the millisecond (``2026-12-07T21:40:19.123``), as
DynamoDB's are. A shard is one partition of the table while the stream is on; its id names the stream and
the partition, so a shard id alone says where its records live. A record's sequence number is its write's
position in the partition's replicated log: ``index * SEQ_PER_ENTRY + position in the entry``, so numbers
grow with the log, and a split child's (whose log starts where its parent's split entry is) follow its
parent's.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any

import orjson

from dynamo.requests.common import STREAM_VIEW_TYPES
from dynamo.size import item_size
from dynamo.values import values_equal

Item = dict[str, Any]

VIEW_TYPES = STREAM_VIEW_TYPES  # the order is the codec of a stamped entry (storagenode.streams): never change it
SEQ_PER_ENTRY = 100_000  # sequence numbers per log entry: far more than the effects one entry holds
SEQ_DIGITS = 21  # the shortest sequence number DynamoDB's API allows
RETENTION_MS = 24 * 3600 * 1000  # records older than this are trimmed, as DynamoDB's are
ITERATOR_LIFETIME_MS = 15 * 60 * 1000  # a shard iterator expires this long after it is returned
MAX_GET_RECORDS = 1000  # GetRecords' upper limit on Limit (and its default)
MAX_GET_RECORDS_BYTES = 1 << 20  # GetRecords answers at most 1 MB of records
MAX_LIST_LIMIT = 100  # ListStreams' and DescribeStream's upper limit on Limit (and their default)
TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}

_LABEL = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\Z")
_SHARD = re.compile(r"\AshardId-(\d{20})-([0-9a-f]{8,16})\Z")
_ITERATOR_PREFIX = "ddb1|"


# ---- labels, ARNs and shard ids --------------------------------------------------------------------------


def stream_label(enabled_ms: int) -> str:
    """The label of a stream enabled at ``enabled_ms`` (milliseconds since the epoch, UTC)."""
    when = datetime.fromtimestamp(enabled_ms // 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{enabled_ms % 1000:03d}"


def label_ms(label: str) -> int | None:
    """The milliseconds a label names; None if it is not a label."""
    if not _LABEL.match(label):
        return None
    try:
        when = datetime.strptime(label[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(when.timestamp()) * 1000 + int(label[20:])


def stream_arn(table_arn: str, enabled_ms: int) -> str:
    return f"{table_arn}/stream/{stream_label(enabled_ms)}"


def parse_stream_arn(arn: str) -> tuple[str, int] | None:
    """(table name, label's milliseconds) of a stream ARN ``arn:aws:dynamodb:R:A:table/T/stream/LABEL``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "dynamodb":
        return None
    resource = parts[5].split("/")
    if len(resource) != 4 or resource[0] != "table" or resource[2] != "stream" or not resource[1]:
        return None
    ms = label_ms(resource[3])
    return None if ms is None else (resource[1], ms)


def shard_id(enabled_ms: int, partition_id: int) -> str:
    return f"shardId-{enabled_ms:020d}-{partition_id:08x}"


def parse_shard_id(text: str) -> tuple[int, int] | None:
    """(the stream's enabled ms, partition id) of a shard id this cluster made; None for any other text."""
    found = _SHARD.match(text)
    return None if found is None else (int(found.group(1)), int(found.group(2), 16))


# ---- sequence numbers ------------------------------------------------------------------------------------


def seq_of(index: int, position: int) -> int:
    assert 0 <= position < SEQ_PER_ENTRY, position
    return index * SEQ_PER_ENTRY + position


def seq_text(seq: int) -> str:
    return f"{seq:0{SEQ_DIGITS}d}"


def parse_seq(text: str) -> int | None:
    return int(text) if text.isdigit() and text.isascii() else None


# ---- records ---------------------------------------------------------------------------------------------


def change(view_type: str, keys: Item, old: Item | None, new: Item | None) -> dict[str, Any] | None:
    """What a stream keeps of one write: the event, the keys, the images ``view_type`` asks for and the
    record's size. None when the write changed nothing (DynamoDB writes no record then)."""
    if old is None and new is None or (old is not None and new is not None and values_equal({"M": old}, {"M": new})):
        return None  # equal as DynamoDB compares (1 and 1.0, a set in another order)
    event = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    record: dict[str, Any] = {"e": event, "k": keys}
    size = item_size(keys)
    if new is not None and view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        record["n"] = new
        size += item_size(new)
    if old is not None and view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        record["o"] = old
        size += item_size(old)
    record["z"] = size
    return record


def event_id(table_id: int, shard_partition: int, seq: int) -> str:
    """A record's eventID: 32 hex digits, the same every time the record is read."""
    return blake2b(f"{table_id}:{shard_partition}:{seq}".encode(), digest_size=16).hexdigest()


def api_record(stored: dict[str, Any], seq: int, view_type: str, region: str, eid: str) -> dict[str, Any]:
    """The GetRecords record of one stored change (``change`` plus the time ``t`` in ms and ``u`` for a
    time-to-live delete)."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": stored["t"] // 1000,
        "Keys": stored["k"],
    }
    if "n" in stored:
        body["NewImage"] = stored["n"]
    if "o" in stored:
        body["OldImage"] = stored["o"]
    body["SequenceNumber"] = seq_text(seq)
    body["SizeBytes"] = stored["z"]
    body["StreamViewType"] = view_type
    record = {
        "eventID": eid,
        "eventName": stored["e"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
    }
    if stored.get("u"):
        record["userIdentity"] = dict(TTL_IDENTITY)
    return record


# ---- shards ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard of a stream: a partition of the table while the stream was on."""

    partition: int
    parent: int  # the parent partition's shard in the same stream; 0 if it has none
    lo: int  # the partition's hash range: any partition inside it holds the shard's records
    hi: int
    start_seq: int
    end_seq: int | None  # the last sequence number of a partition that split; None otherwise

    def to_wire(self, enabled_ms: int) -> dict[str, Any]:
        numbers = {"StartingSequenceNumber": seq_text(self.start_seq)}
        if self.end_seq is not None:
            numbers["EndingSequenceNumber"] = seq_text(self.end_seq)
        shard: dict[str, Any] = {"ShardId": shard_id(enabled_ms, self.partition), "SequenceNumberRange": numbers}
        if self.parent:
            shard["ParentShardId"] = shard_id(enabled_ms, self.parent)
        return shard


def stream_shards(enabled_ms: int, disabled_ms: int, partitions: Iterable[tuple[int, int, int, int]],
                  closed: Iterable[tuple[int, int, int, int, int, int]]) -> list[Shard]:
    """The shards of the stream enabled at ``enabled_ms`` (and disabled at ``disabled_ms``, 0 if it is on),
    parents first: the table's ``partitions`` (id, parent, lo, hi) that were born before the stream ended,
    and its ``closed`` ones (id, parent, lo, hi, split entry's index, closed ms) that split after it began.
    A partition whose parent is not in ``closed`` was born with its table, or before any stream."""
    closed_by = {c[0]: c for c in closed}
    until = disabled_ms or float("inf")

    def born_in_time(parent: int) -> bool:
        split = closed_by.get(parent)
        return split is None or split[5] < until

    def start(parent: int) -> int:
        split = closed_by.get(parent)
        return 0 if split is None else seq_of(split[4] + 1, 0)

    chosen = {c[0]: Shard(c[0], c[1], c[2], c[3], start(c[1]), seq_of(c[4], 0) - 1)
              for c in closed_by.values() if c[5] > enabled_ms and born_in_time(c[1])}
    for pid, parent, lo, hi in partitions:
        if born_in_time(parent):
            chosen[pid] = Shard(pid, parent, lo, hi, start(parent), None)
    shards = [shard if shard.parent in chosen else Shard(shard.partition, 0, shard.lo, shard.hi, shard.start_seq,
                                                         shard.end_seq)
              for shard in chosen.values()]
    return sorted(shards, key=lambda shard: (shard.start_seq, shard.lo))


# ---- shard iterators -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardIterator:
    """Where a reader is in a shard: the next sequence number to read (or any after it), and when the
    iterator was made (it expires ``ITERATOR_LIFETIME_MS`` later)."""

    stream_arn: str
    shard: str
    next_seq: int
    issued_ms: int

    def encode(self) -> str:
        body = orjson.dumps([self.stream_arn, self.shard, self.next_seq, self.issued_ms])
        return _ITERATOR_PREFIX + base64.urlsafe_b64encode(body).decode("ascii")

    @staticmethod
    def decode(text: str) -> ShardIterator | None:
        if not text.startswith(_ITERATOR_PREFIX):
            return None
        try:
            arn, shard, next_seq, issued_ms = orjson.loads(base64.urlsafe_b64decode(text[len(_ITERATOR_PREFIX):]))
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            return None
        if not (isinstance(arn, str) and isinstance(shard, str) and type(next_seq) is int
                and type(issued_ms) is int and next_seq >= 0):
            return None
        return ShardIterator(arn, shard, next_seq, issued_ms)
