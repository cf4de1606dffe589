"""The "cp" group's state machine as the replication driver sees it: Metadata, kept durable in the store.

The metadata lives in memory, so it is also written to the store with every applied entry, in the same
batch as the driver's applied index: after a restart the replica resumes from exactly the state its applied
index says, and never re-applies (the driver skips applied entries). A snapshot is the same JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from control_plane.metadata import Metadata
from paxos.replica import Role
from paxos.types import Snapshot

CP_GROUP = "cp"
CP_GROUP_NUMBER = 0
_META_KEY = b"metadata"


class MetadataMachine:
    """``runtime.replication.StateMachine`` over ``Metadata``; tells the app about map and role changes."""

    def __init__(self, store: Any, on_map_change: Callable[[], None] = lambda: None,
                 on_role: Callable[[Role, str], None] = lambda role, leader: None) -> None:
        self.store = store
        raw = store.get_group_meta(CP_GROUP_NUMBER, _META_KEY)
        self.meta = Metadata.restore(raw) if raw is not None else Metadata()
        self._on_map_change = on_map_change
        self._on_role = on_role

    def apply(self, batch: Any, index: int, data: bytes) -> Any:
        if index <= self.meta.applied_index:
            return None  # already in the state (restored from a snapshot taken after this entry)
        version = self.meta.map_version
        result = self.meta.apply(index, data)
        self.store.put_group_meta(batch, CP_GROUP_NUMBER, _META_KEY, self.meta.snapshot())
        if self.meta.map_version != version:
            self._on_map_change()
        return result

    def snapshot_data(self) -> bytes:
        return self.meta.snapshot()

    def restore(self, batch: Any, snapshot: Snapshot) -> None:
        self.meta = Metadata.restore(snapshot.data) if snapshot.data else Metadata()
        self.meta.applied_index = max(self.meta.applied_index, snapshot.index)
        self.store.put_group_meta(batch, CP_GROUP_NUMBER, _META_KEY, self.meta.snapshot())
        self._on_map_change()

    def on_role(self, role: Role, leader: str) -> None:
        self._on_role(role, leader)
