"""The auto-admin process: holds the admin lease, looks at the cluster, repairs it.

One loop, every ``poll_interval_ms``:

1. hold the lease (``admin_lease`` at the control-plane leader; renewed well before it ends). Without it,
   do nothing: another auto-admin is active.
2. read ``admin_state`` (the map, node liveness, each group's membership as its replicas report it);
3. ``autoadmin.planner.plan`` says what to do; send each action (``begin_repair``/``finish_repair``).

Everything under way lives in the control plane's metadata (a repair is ``joining``/``replacing`` in the
map) and in the groups' logs (the membership change, driven by each group's leader as the map asks), so a
killed and restarted auto-admin finds the work where it was and finishes it: there is no local state.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from autoadmin.planner import (
    Action,
    BeginRepair,
    FinishRepair,
    FinishSplit,
    PlannerLimits,
    ProposeSplit,
    plan,
)
from proto.kinds import AdminOp, ControlOp, Kind, partition_group
from runtime.config import Role
from runtime.logs import get_logger
from runtime.process import ProcessApp, ProcessHost
from runtime.transport import TransportError

log = get_logger("autoadmin")


@dataclass(frozen=True, slots=True)
class AdminConfig:
    poll_interval_ms: int = 500
    split_poll_interval_ms: int = 50
    lease_ms: int = 5_000  # renewed every poll; another auto-admin waits this long after we die
    control_timeout_ms: int = 2_000
    max_redirects: int = 3
    recent_actions: int = 50  # kept for `ddb status`


class ControlError(Exception):
    """The control plane could not be reached or refused the request."""


class AutoAdminApp(ProcessApp):
    def __init__(self, config: AdminConfig | None = None, limits: PlannerLimits | None = None) -> None:
        self.cfg = config or AdminConfig()
        self.limits = limits or PlannerLimits()
        self.cp_leader = ""
        self.holds_lease = False
        self._lease_until_ms = 0.0
        self.recent: deque[dict[str, Any]] = deque(maxlen=self.cfg.recent_actions)
        self.repairs: list[dict[str, Any]] = []
        self.splits: list[dict[str, Any]] = []
        self.rounds = 0

    async def start(self, host: ProcessHost) -> None:
        self.host = host
        self.name = host.node.name
        self.control_nodes = [n.name for n in host.config.by_role(Role.CONTROL)]
        self._turn = itertools.count()
        host.spawn(self._loop(), name="autoadmin")
        host.ready = True
        log.info("auto-admin started", repair_delay_s=host.config.admin.repair_delay_s)

    # ---- the control plane ------------------------------------------------------------------------------

    async def control(self, request: dict[str, Any]) -> Any:
        """Send a CONTROL request to the control-plane leader (following redirects); its ``ok`` value."""
        payload = orjson.dumps(request)
        last = "no control-plane node answered"
        for _ in range(self.cfg.max_redirects + len(self.control_nodes)):
            peer = self.cp_leader or self.control_nodes[next(self._turn) % len(self.control_nodes)]
            try:
                raw = await self.host.transport.call(peer, "cp", Kind.CONTROL, payload,
                                                     timeout_ms=self.cfg.control_timeout_ms)
                answer = orjson.loads(raw)
            except (TransportError, orjson.JSONDecodeError) as exc:
                self.cp_leader = ""
                last = f"{peer}: {exc}"
                continue
            if "ok" in answer:
                self.cp_leader = peer
                return answer["ok"]
            if "redirect" in answer:
                hint = answer["redirect"]
                self.cp_leader = hint if hint in self.control_nodes and hint != peer else ""
                if not self.cp_leader:
                    await asyncio.sleep(0.1)  # an election is under way
                last = f"{peer}: redirect to {hint!r}"
                continue
            raise ControlError(f"{peer}: {answer.get('error')}")
        raise ControlError(last)

    # ---- the loop ---------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await self.round()
            except ControlError as exc:
                log.info("auto-admin round skipped", error=str(exc))
            except Exception:
                log.exception("auto-admin round failed")
            # Look again soon while a split is under way: writes to its range wait for the map to flip.
            fast = self.splits and self.holds_lease
            await asyncio.sleep((self.cfg.split_poll_interval_ms if fast else self.cfg.poll_interval_ms) / 1000.0)

    async def round(self) -> list[Action]:
        """One look and the actions it led to (sent)."""
        self.rounds += 1
        now_ms = self.host.clock.monotonic_ms()
        if not self.holds_lease or self._lease_until_ms - now_ms < self.cfg.lease_ms / 2:
            await self._renew_lease(now_ms)
        if not self.holds_lease:
            return []
        state = await self.control({"op": ControlOp.ADMIN_STATE.value})

        self.repairs = [{"partition": int(pid), "old": p.get("replacing"), "new": p["joining"]}
                        for pid, p in state["map"]["partitions"].items() if p.get("joining")]
        self.splits = [{"partition": int(pid), "mid": p["split"]["mid"]}
                       for pid, p in state["map"]["partitions"].items() if p.get("split")]
        actions = plan(state, self.limits)
        for action in actions:
            await self._do(action)
        return actions

    async def _renew_lease(self, sent_ms: float) -> None:
        """Ask for (or renew) the lease; it counts from when we asked, by our own monotonic clock."""
        lease = await self.control({"op": ControlOp.ADMIN_LEASE.value, "holder": self.name,
                                    "duration_ms": self.cfg.lease_ms})
        if not lease.get("granted"):
            if self.holds_lease:
                log.warning("auto-admin lease lost", holder=lease.get("holder"))
            self.holds_lease = False
            return
        if not self.holds_lease:
            log.info("auto-admin lease held", until_ms=lease.get("until_ms"))
        self.holds_lease = True
        self._lease_until_ms = sent_ms + self.cfg.lease_ms

    async def split_point(self, action: ProposeSplit) -> str | None:
        """Ask the partition's leader where to cut (by size: half its bytes; by heat: half its recent writes)."""
        try:
            raw = await self.host.transport.call(
                action.leader, partition_group(action.partition), Kind.ADMIN,
                orjson.dumps({"op": AdminOp.SPLIT_POINT.value, "by": action.reason}),
                timeout_ms=self.cfg.control_timeout_ms)
            answer = orjson.loads(raw)
        except (TransportError, orjson.JSONDecodeError) as exc:
            raise ControlError(f"{action.leader}: {exc}") from None
        mid = (answer.get("ok") or {}).get("mid")
        return mid if isinstance(mid, str) else None

    async def _do(self, action: Action) -> None:
        event = {"action": type(action).__name__, **asdict(action), "at_ms": round(self.host.clock.wall_ms())}
        try:
            if isinstance(action, BeginRepair):
                request = {"op": ControlOp.BEGIN_REPAIR.value, "partition": action.partition, "old": action.old,
                           "new": action.new}
            elif isinstance(action, FinishRepair):
                request = {"op": ControlOp.FINISH_REPAIR.value, "partition": action.partition, "new": action.new}
            elif isinstance(action, FinishSplit):
                request = {"op": ControlOp.FINISH_SPLIT.value, "partition": action.partition, "index": action.index}
            else:
                mid = await self.split_point(action)
                if mid is None:
                    return  # nowhere to cut (one hot key alone, or an empty range)
                event["mid"] = mid
                request = {"op": ControlOp.BEGIN_SPLIT.value, "partition": action.partition, "mid": mid,
                           "reason": action.reason}
        except ControlError as exc:
            log.warning("auto-admin action failed", action=event["action"], partition=action.partition,
                        error=str(exc))
            return
        request["holder"] = self.name
        try:
            await self.control(request)
            event["outcome"] = "ok"
            log.info("auto-admin action", **{k: v for k, v in event.items() if k != "at_ms"})
        except ControlError as exc:
            event["outcome"] = f"failed: {exc}"
            log.warning("auto-admin action failed", action=event["action"], partition=action.partition,
                        error=str(exc))
        self.recent.append(event)

    # ---- status ------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {"lease": self.holds_lease, "cp_leader": self.cp_leader, "rounds": self.rounds,
                "repairs_in_progress": len(self.repairs)}

    def fill_status(self, reply: Any) -> None:
        reply.detail_json = orjson.dumps({"lease": self.holds_lease, "repairs": self.repairs, "splits": self.splits,
                                          "recent": list(self.recent)}).decode()
