"""The internal request contract: envelope kinds and the JSON payloads they carry.

Processes talk over ``runtime.transport`` (one batched gRPC stream per peer pair). An envelope names its
addressee inside the process (``group``) and what it is (``kind``); the payload is encoded by its owner:

``PAXOS`` (one-way), group = the replication group ("cp" or "p<partition id>"):
    ``runtime.paxos_codec.encode_message``.

``SNAPSHOT`` (request between storage nodes), group = "p<partition id>": a snapshot transfer from the group's
    leader to one follower, payload ``runtime.snapshot_stream.encode_request`` (JSON header + raw records),
    answer JSON ``{"ok": {...}}`` | ``{"error": "<why>"}``. The flow is in ``runtime.snapshot_stream``.

``CONTROL`` (request to any control-plane node), group = "cp", payload and answer are JSON:
    request  ``{"op": <ControlOp>, ...fields}``
    answer   ``{"ok": <result>}`` | ``{"error": <DynamoError body>}`` | ``{"redirect": "<cp leader name or ''>"}``
    Table operations and heartbeats go to the control-plane leader (others redirect); ``get_map`` is answered
    by any control-plane replica from its applied state (maps are versioned: a stale one is harmless).
    Table operations may carry ``"region"`` (the client's signing region, for ARNs; default us-east-1).
    A heartbeat (every ``admin.node_heartbeat_interval_ms``) is ``{"op": "heartbeat", "node": "sn-a1",
    "replicas": [{"group": "p3", "role": "leader", "leader": "sn-a1", "commit": 10, "applied": 10, "last": 10,
    "ballot": 4}, ...], "stats": {"p3": {"items": 5, "bytes": 300}, ...}}`` (stats from the partitions the node
    leads: they become DescribeTable's ItemCount and TableSizeBytes). A CREATING table turns
    ACTIVE once a heartbeat reports a leader for each of its partitions, so storage nodes start the replicas
    of every partition the map places on them, whatever the table's status.

``ITEM`` (request from a router to a storage node), group = "p<partition id>", JSON:
    request  ``{"op": <DynamoDB operation>, "table": name, "table_id": int, "map_version": int,
               "hash": int (partition-key hash of the item/key; absent for Scan), "consistent": bool,
               "request": <the client's validated DynamoDB request>}``
    answer   ``{"ok": <DynamoDB response body>}`` | ``{"error": <DynamoError body>}``
             | ``{"redirect": "<leader name or ''>"}`` (writes and strongly consistent reads go to the leader)
             | ``{"stale": <the node's map version>}`` (this node does not host the partition, or the hash is
               outside its range, e.g. after a split: the router refreshes its map and retries)
             | ``{"unavailable": "<why>"}`` (no quorum / leader lease not ready yet: the router may retry
               elsewhere, then answers the client a retryable error)
             | ``{"unavailable": "<why>", "not_applied": true}``: for writes, the node says the write was
               never proposed (lease or barrier not ready, too many in flight), so the router may resend it
               elsewhere. A write answered ``unavailable`` WITHOUT ``not_applied`` may or may not have been
               applied (e.g. the proposal timed out): the router never resends it (a second UpdateItem ADD
               would count twice, a conditional put would fail its own condition) and answers the client
               InternalServerError (500), which SDKs retry, as DynamoDB does for its own unknown outcomes.
             | ``{"throttled": "read" | "write", "not_applied": true}``: the partition replica is over its
               per-partition limit (``storagenode.admission``); nothing was read or applied. The router answers
               DynamoDB's throttling error at once; a batch part comes back unprocessed.

Multi-item ITEM requests (issue 6; ``storagenode.reads`` documents the answers) add fields to the request:
    Query / Scan    ``"start"``, ``"end"`` (hex stored keys: the range to read, clipped by the node to its
                    partition), ``"reverse"``, ``"limit"`` (int or null), ``"max_bytes"``; ``"hash"`` is the
                    partition-key hash (Query) or the hash the page part starts at (Scan). The answer's
                    ``ok`` is one page part: ``Items``, ``Count``, ``ScannedCount``, ``Read``, ``Hi``, and
                    ``LastKey`` when the page is full.
    BatchGetItem    ``"keys"``: the keys of this partition; ``request`` holds the table's projection and
                    ConsistentRead. Answer ``{"Items": [...], "Sizes": [...] (only with ConsumedCapacity)}``.
    BatchWriteItem  ``"writes"``: PutRequest / DeleteRequest entries of this partition, applied as one log
                    entry. Answer ``{}`` or ``{"Sizes": [[old, new], ...]}``. Blind writes: the router may
                    resend a part whose outcome is unknown.

Errors travel as DynamoDB bodies (``DynamoError.to_body()``) and are rebuilt by type name
(``error_from_body``), so what the client sees is what the storage node decided.
"""

from __future__ import annotations

import enum
from typing import Any

from dynamo import errors


class Kind(enum.IntEnum):
    PAXOS = 1
    SNAPSHOT = 2  # runtime.snapshot_stream.KIND_SNAPSHOT
    CONTROL = 10
    ITEM = 20
    ADMIN = 30  # node administration (auto-admin, ddb verify): ``AdminOp``


class ControlOp(enum.StrEnum):
    GET_MAP = "get_map"  # {"since": version, "wait_ms": int} -> the map (see control_plane.metadata.to_map)
    HEARTBEAT = "heartbeat"  # {"node": name, "replicas": [...], "stats": {...}} -> {"map_version": int}
    CREATE_TABLE = "create_table"  # {"request": CreateTable request} -> {"TableDescription": ...}
    DESCRIBE_TABLE = "describe_table"  # {"name": ...} -> {"Table": ...}
    LIST_TABLES = "list_tables"  # {"request": ListTables request} -> ListTables response
    DELETE_TABLE = "delete_table"  # {"name": ...} -> {"TableDescription": ...}
    UPDATE_TABLE = "update_table"  # {"request": UpdateTable request} -> {"TableDescription": ...}
    TAG_RESOURCE = "tag_resource"  # {"request": ...} -> {}
    UNTAG_RESOURCE = "untag_resource"  # {"request": ...} -> {}
    LIST_TAGS = "list_tags"  # {"request": ...} -> {"Tags": [...], ...}
    UPDATE_TTL = "update_time_to_live"  # {"request": ...} -> {"TimeToLiveSpecification": {...}}
    DESCRIBE_TTL = "describe_time_to_live"  # {"request": ...} -> {"TimeToLiveDescription": {...}}
    DESCRIBE_BACKUPS = "describe_continuous_backups"  # {"request": ...} -> {"ContinuousBackupsDescription": ...}
    UPDATE_BACKUPS = "update_continuous_backups"  # {"request": ...} -> {"ContinuousBackupsDescription": ...}
    # The auto-admin (leader only). Changes need the caller to hold the admin lease ("holder").
    ADMIN_LEASE = "admin_lease"  # {"holder": name, "duration_ms": int} -> {"granted": bool, "holder", "until_ms"}
    ADMIN_STATE = "admin_state"  # {} -> {"map", "nodes": {name: {"az", "alive", "dead"}}, "reports", "usage", ...}
    BEGIN_REPAIR = "begin_repair"  # {"holder", "partition": id, "old": node, "new": node} -> partition entry
    FINISH_REPAIR = "finish_repair"  # {"holder", "partition": id, "new": node} -> partition entry
    BEGIN_SPLIT = "begin_split"  # {"holder", "partition": id, "mid": "<hash>", "reason": str} -> partition entry
    FINISH_SPLIT = "finish_split"  # {"holder", "partition": id, "index": split entry's} -> {"children": [ids]}


class AdminOp(enum.StrEnum):
    """``ADMIN`` requests to a storage node (group = "p<partition id>"), JSON both ways:
    ``{"op": "checksum"}`` -> ``{"ok": {"applied": int, "commit": int, "checksum": str, "role": str,
    "voters": [...], "learners": [...], "receiving": bool}}`` or ``{"error": "<why>"}`` (``receiving``: a
    snapshot transfer into this replica is under way, its checksum is of a partial state);
    ``{"op": "split_point", "by": "size" | "heat"}`` -> ``{"ok": {"mid": "<hash>" | null}}`` (the leader's
    view: the hash at half the range's bytes, or at half of its recent writes)."""

    CHECKSUM = "checksum"
    SPLIT_POINT = "split_point"


_BY_TYPE: dict[str, type[errors.DynamoError]] = {}


def _index_errors() -> None:
    # Breadth first, first class wins: a subclass that shares its parent's wire type (for example the
    # router's OperationNotSupported, a ValidationException) must not stand in for the parent.
    queue: list[type[errors.DynamoError]] = [errors.DynamoError]
    while queue:
        cls = queue.pop(0)
        _BY_TYPE.setdefault(cls.type_name, cls)
        queue.extend(cls.__subclasses__())


def error_from_body(body: dict[str, Any]) -> errors.DynamoError:
    """Rebuild the DynamoError a remote process raised, from its wire body."""
    if not _BY_TYPE:
        _index_errors()
    cls = _BY_TYPE.get(str(body.get("__type", "")), errors.InternalServerError)
    extra = {k: v for k, v in body.items() if k not in ("__type", "message")}
    return cls(str(body.get("message", "")), **extra)


def partition_group(partition_id: int) -> str:
    return f"p{partition_id}"


def partition_of_group(group: str) -> int | None:
    if len(group) > 1 and group[0] == "p" and group[1:].isdigit():
        return int(group[1:])
    return None
