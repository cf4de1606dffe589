"""Multi-item ITEM requests at a storage node: Query and Scan pages, BatchGetItem and BatchWriteItem parts.

The router plans, the node reads. A Query or Scan request names the stored-key range to read
(``start``/``end``, hex), its direction, the items left to the page's ``Limit`` and its byte budget
(``max_bytes``); the node reads that range clipped to its own partition and answers one page part:

    {"ok": {"Items": [...], "Count": n, "ScannedCount": m, "Read": <bytes read>, "Hi": "<partition hash end>",
            "LastKey": "<hex stored key of the last item read>" (only when the page is full), "Size": bytes}}

``Size`` (DynamoDB item sizes of the items read, for capacity) only when the client asked for
ConsumedCapacity. Items the filter keeps go out as their stored bytes when nothing is projected.

A BatchGetItem part carries ``keys`` (all in this partition) and answers at most about
``MAX_PART_ANSWER_BYTES`` of items, naming the keys it left (``Unprocessed``: their indexes). A
BatchWriteItem part carries ``writes`` (PutRequest / DeleteRequest) and becomes one log entry of several
effects (or a few, when big items would make an entry larger than ``MAX_ENTRY_BYTES``): blind writes, so
the only decision is the new image. The router has checked keys, items and duplicates.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from dynamo import keycodec
from dynamo.capacity import read_units
from dynamo.errors import TransactionConflictException, ValidationException
from dynamo.expressions import KeyCondition, evaluate, project
from dynamo.indexes import IndexRead, fetches_item, index_write_charges
from dynamo.keycodec import KeyRange
from dynamo.queries import ReadPlan, parse_batch_get, parse_query, parse_scan, query_range
from dynamo.size import item_size
from paxos.errors import NotLeader, ProposalDropped
from storagenode.admission import UnitKind, read_charge, write_charge
from storagenode.entries import EntryList
from storagenode.items import (
    MIN_WRITE_UNITS,
    MSG_TRANSACTION_CONFLICT,
    Answer,
    forget_all,
    redirect,
    unavailable,
)
from storagenode.locks import is_lock
from storagenode.partition import Effect, decode_item, encode_item

if TYPE_CHECKING:
    from storagenode.items import ItemService
    from storagenode.node import Hosted

CHUNK_ITEMS = 256  # items read between two yields to the event loop
MAX_PART_KEYS = 100  # a BatchGetItem has at most 100 keys, a BatchWriteItem 25 writes
MAX_PART_ANSWER_BYTES = 4 << 20  # a BatchGetItem part answers at most about this much (gRPC messages are bounded)
MAX_ENTRY_BYTES = 1 << 20  # a BatchWriteItem part's effects per log entry (keys, new and old images)


def _wants_capacity(request: dict[str, Any]) -> bool:
    return (request.get("ReturnConsumedCapacity") or "NONE") != "NONE"


class Reads:
    """The handlers, registered in ``ItemService.ops``."""

    def __init__(self, service: ItemService) -> None:
        self.service = service
        service.ops.update({
            "Query": self.read_range,
            "Scan": self.read_range,
            "IndexQuery": self.index_query,
            "BatchGetItem": self.batch_get,
            "BatchWriteItem": self.batch_write,
        })

    def _check_hash(self, hosted: Hosted, hash64: Any) -> None:
        if not isinstance(hash64, int) or not hosted.data.covers(hash64):
            raise Answer({"stale": self.service.node.map_version})

    async def read_range(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        request: dict[str, Any] = req["request"]
        self._check_hash(hosted, req["hash"])
        if req.get("index") is not None:
            return await self.index_scan(hosted, req)
        plan: ReadPlan = parse_query(request, hosted.data.schema.dynamo())[1] if req["op"] == "Query" else parse_scan(request)
        consistent, estimate, limit, max_bytes = await self._begin_page(hosted, req)
        reverse = bool(req.get("reverse"))
        left = hosted.data.range.intersect(KeyRange(bytes.fromhex(req["start"]), bytes.fromhex(req["end"])))
        parts: list[bytes] = []
        count = scanned = used = 0
        size = 0
        sized = _wants_capacity(request)
        last = b""
        # Read in chunks, yielding to the event loop between them: a 1 MB page of small items decoded
        # for a filter must not hold up this node's Paxos heartbeats.
        while not left.empty:
            chunk = CHUNK_ITEMS if limit is None else min(CHUNK_ITEMS, limit - scanned)
            rows = hosted.data.scan_applied(left.start, left.end, reverse, chunk, max_bytes - used)
            for key, raw in rows:
                last = key
                if raw is None:
                    continue  # an item a transaction is creating: not there yet for reads
                scanned += 1
                used += len(raw)
                # Exact sizes when the client asked for its consumed capacity; otherwise the stored bytes,
                # which are never smaller than DynamoDB's size of the item (a test in test_admission.py
                # checks it): decoding every item of a page only to size it costs more than the read.
                size += item_size(decode_item(raw)) if sized else len(raw)
                out = plan.apply(raw)
                if out is None:
                    continue
                count += 1
                if out:
                    parts.append(out)
            if len(rows) < chunk or used >= max_bytes or (limit is not None and scanned >= limit):
                break
            left = left.resume(last, reverse)
            await asyncio.sleep(0)
        self.service.settle(hosted, UnitKind.READ, estimate, read_units(size, consistent=consistent))
        full = (limit is not None and scanned >= limit) or used >= max_bytes
        body = [b'{"ok":{"Items":[', b",".join(parts), b'],"Count":', str(count).encode(), b',"ScannedCount":',
                str(scanned).encode(), b',"Read":', str(used).encode(), b',"Hi":"', str(hosted.data.hash_hi).encode(), b'"']
        if full and last:
            body += [b',"LastKey":"', last.hex().encode(), b'"']
        if sized:
            body += [b',"Size":', str(size).encode()]
        body.append(b"}}")
        return b"".join(body)

    async def _begin_page(self, hosted: Hosted, req: dict[str, Any]) -> tuple[bool, float, int | None, int]:
        """What every page part does first: the read barrier of a consistent read, then admission. A page is
        admitted (or throttled) as a whole, and later charged by the total size it read (``settle``).
        Answers (consistent, the units admitted, Limit, the byte budget)."""
        consistent = bool(req.get("consistent"))
        if consistent:
            await self.service._consistent_read_barrier(hosted)
        estimate = read_units(0, consistent=consistent)
        self.service.admit(hosted, UnitKind.READ, estimate, (req["hash"],))
        limit = req.get("limit")
        max_bytes = int(req["max_bytes"])
        assert limit is None or (isinstance(limit, int) and limit > 0), limit
        assert max_bytes > 0, max_bytes
        return consistent, estimate, limit, max_bytes

    async def _rows(self, hosted: Hosted, rng: KeyRange, reverse: bool = False) -> AsyncIterator[tuple[bytes, bytes]]:
        """Every item of ``rng`` (clipped to this partition) in order, yielding to the event loop between
        chunks: reading a whole partition for an index must not hold up this node's heartbeats."""
        left = hosted.data.range.intersect(rng)
        while not left.empty:
            rows = hosted.data.scan_applied(left.start, left.end, reverse, CHUNK_ITEMS, 1 << 62)
            for key, raw in rows:
                if raw is not None:
                    yield key, raw
            if len(rows) < CHUNK_ITEMS:
                # No turn of the event loop after the last chunk: an entry list's build (``_entry_list``)
                # is complete only if no write lands between its last read and its ``built()``.
                return
            left = left.resume(rows[-1][0], reverse)
            await asyncio.sleep(0)

    async def index_query(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        """This partition's share of a Query on an index: its entries after ``after`` in the index's order,
        at most ``limit`` of them and about ``max_bytes`` of entries, each as
        ``[position hex, kept by the filter, answer item or null, entry size, LastEvaluatedKey]``. ``More``:
        entries were left out. The router merges the shares of all partitions (a GSI) or takes the one (an
        LSI, whose entries share their item collection's partition)."""
        request: dict[str, Any] = req["request"]
        self._check_hash(hosted, req["hash"])
        index = IndexRead.from_wire(req["index"])
        condition, plan = parse_query(request, index.key)
        consistent, estimate, limit, max_bytes = await self._begin_page(hosted, req)
        reverse = bool(req.get("reverse"))
        after: tuple[bytes, bytes] | None = None
        if req.get("after"):
            after = (bytes.fromhex(req["after"][0]), bytes.fromhex(req["after"][1]))
        entries = index.entry_range(condition)
        listed = await self._entry_list(hosted, index) if index.is_global else None
        if listed is not None:
            ordered: Iterator[tuple[bytes, dict[str, Any]]] = _listed(hosted, listed, entries, after, reverse)
        else:
            ordered = iter(await self._read_entries(hosted, index, condition, entries, after, reverse))
        whole = fetches_item(index, request)
        cands: list[list[Any]] = []
        used = 0
        more = False
        for position, item in ordered:
            if (limit is not None and len(cands) >= limit) or used >= max_bytes:
                more = True
                break
            entry_item = index.project(item)
            size = item_size(entry_item)
            used += size
            source = item if whole else entry_item
            kept = plan.filter is None or evaluate(plan.filter, source)
            out = None
            if kept and not plan.count_only:
                out = project(source, plan.projection) if plan.projection is not None else source
            cands.append([position.hex(), kept, out, size, index.start_key(item)])
        self.service.settle(hosted, UnitKind.READ, estimate, read_units(used, consistent=consistent))
        return orjson.dumps({"ok": {"Cands": cands, "More": more, "Lo": str(hosted.data.hash_lo),
                                    "Hi": str(hosted.data.hash_hi)}})

    async def _read_entries(self, hosted: Hosted, index: IndexRead, condition: KeyCondition, entries: KeyRange,
                            after: tuple[bytes, bytes] | None, reverse: bool) -> list[tuple[bytes, dict[str, Any]]]:
        """(position, item) of the entries in ``entries`` after ``after``, in the read's order, by reading the
        items: an LSI's item collection, or (no entry list) the whole partition."""
        if index.is_global:
            rng = hosted.data.range
        else:  # an LSI's entries are its item collection's items
            rng = query_range(hosted.table_id, index.table_key, KeyCondition(condition.hash_value))[1]
        start = None if after is None else after[0] + after[1]
        found: list[tuple[bytes, dict[str, Any]]] = []
        async for stored, raw in self._rows(hosted, rng):
            item = decode_item(raw)
            assert item is not None
            entry = index.entry_key(item)
            if entry is None or entry not in entries:
                continue
            position = entry + stored
            if start is not None and (position >= start if reverse else position <= start):
                continue
            found.append((position, item))
        found.sort(key=lambda pair: pair[0], reverse=reverse)
        return found

    async def _entry_list(self, hosted: Hosted, index: IndexRead) -> EntryList | None:
        """The replica's list of the GSI's entries, built now by the first read that needs it; None while
        another read builds it, or when the partition has too many entries to list (given up)."""
        lists = hosted.data.entry_lists
        listed, new = lists.get(index)
        if listed.ready:
            return listed
        if not new:
            return None  # being built by another read: this one reads the partition meanwhile
        try:
            async for stored, raw in self._rows(hosted, hosted.data.range):
                item = decode_item(raw)
                assert item is not None
                if not listed.read(stored, item):
                    listed.give_up()
                    return None
        except BaseException:
            lists.drop(index)
            raise
        if not lists.holds(listed):
            return None  # the replica's state was replaced meanwhile: what was read is gone
        listed.built()
        return listed

    async def index_scan(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        """A Scan page part on an index: the table's items in this partition's range from ``start``, those
        with an entry in the index counted (Limit, ScannedCount, the 1 MB budget) and answered as entries;
        the page's LastEvaluatedKey (``LastIndexKey``) names the last entry read."""
        request: dict[str, Any] = req["request"]
        index = IndexRead.from_wire(req["index"])
        plan = parse_scan(request)
        consistent, estimate, limit, max_bytes = await self._begin_page(hosted, req)
        whole = fetches_item(index, request)
        items: list[dict[str, Any]] = []
        count = scanned = used = 0
        last: tuple[bytes, dict[str, Any]] | None = None
        full = False
        async for stored, raw in self._rows(hosted, KeyRange(bytes.fromhex(req["start"]), bytes.fromhex(req["end"]))):
            item = decode_item(raw)
            assert item is not None
            if index.entry_key(item) is None:
                continue
            entry_item = index.project(item)
            scanned += 1
            used += item_size(entry_item)
            last = (stored, item)
            source = item if whole else entry_item
            if plan.filter is None or evaluate(plan.filter, source):
                count += 1
                if not plan.count_only:
                    items.append(project(source, plan.projection) if plan.projection is not None else source)
            if (limit is not None and scanned >= limit) or used >= max_bytes:
                full = True
                break
        self.service.settle(hosted, UnitKind.READ, estimate, read_units(used, consistent=consistent))
        body: dict[str, Any] = {"Items": items, "Count": count, "ScannedCount": scanned, "Read": used,
                                "Hi": str(hosted.data.hash_hi), "Size": used}
        if full and last is not None:
            body["LastKey"] = last[0].hex()
            body["LastIndexKey"] = index.start_key(last[1])
        return orjson.dumps({"ok": body})

    async def batch_get(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        request: dict[str, Any] = req["request"]
        keys: list[dict[str, Any]] = req["keys"]
        if not 0 < len(keys) <= MAX_PART_KEYS:
            raise ValidationException("Too many items requested for the BatchGetItem call")
        plan = parse_batch_get(request)
        service = self.service
        stored = [service._locate(hosted, key) for key in keys]
        consistent = bool(req.get("consistent"))
        if consistent:
            await service._consistent_read_barrier(hosted)
        # The part is admitted as a whole (throttled, all its keys come back unprocessed), charged per item.
        estimate = len(stored) * read_units(0, consistent=consistent)
        service.admit(hosted, UnitKind.READ, estimate, (keycodec.key_hash(skey) for skey in stored))
        charged = 0.0
        sized = _wants_capacity(request)
        found: list[bytes] = []
        sizes: list[int | None] = []
        unread: list[int] = []
        used = 0
        for index, skey in enumerate(stored):
            if used >= MAX_PART_ANSWER_BYTES:
                unread.append(index)  # the answer is full: the router hands these back unprocessed
                continue
            raw = hosted.data.read_applied(skey)
            used += len(raw or b"")
            charged += read_charge(raw, consistent=consistent)
            if sized:
                sizes.append(None if raw is None else item_size(decode_item(raw)))
            if raw is None:
                continue
            out = plan.apply(raw)
            assert out is not None  # no filter in a BatchGetItem
            found.append(out)
        # Keys left unread cost nothing: refunded with the rest of the estimate.
        service.settle(hosted, UnitKind.READ, estimate, charged)
        body = [b'{"ok":{"Items":[', b",".join(found), b"]"]
        if sized:
            body += [b',"Sizes":', orjson.dumps(sizes)]
        if unread:
            body += [b',"Unprocessed":', orjson.dumps(unread)]
        body.append(b"}}")
        return b"".join(body)

    async def batch_write(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        request: dict[str, Any] = req["request"]
        writes: list[dict[str, Any]] = req["writes"]
        if not 0 < len(writes) <= MAX_PART_KEYS:
            raise ValidationException("Too many items requested for the BatchWriteItem call")
        service = self.service
        data = hosted.data
        planned: list[tuple[bytes, bytes | None]] = []
        for write in writes:
            put = write.get("PutRequest")
            if put is not None:
                item = put["Item"]
                try:
                    key = data.schema.key_of(item)
                except KeyError:
                    raise ValidationException("The provided key element does not match the schema") from None
                planned.append((service._locate(hosted, key), encode_item(item)))
            else:
                planned.append((service._locate(hosted, write["DeleteRequest"]["Key"]), None))
        cfg = service.node.node_config
        await service.leader_ready(hosted)
        # The part is admitted as a whole (throttled, all its writes come back unprocessed), charged per item.
        estimate = len(planned) * MIN_WRITE_UNITS
        service.admit(hosted, UnitKind.WRITE, estimate, (keycodec.key_hash(skey) for skey, _ in planned))
        charged = 0.0
        effects: list[Effect] = []
        sizes: list[tuple[int | None, int | None]] = []
        sized = _wants_capacity(request)
        # What the writes consume on each index (local, global), when the client asked for capacity.
        indexes = service.node.table_indexes.get(hosted.table_id, ()) if sized else ()
        table_key = data.schema.dynamo()
        index_units: tuple[dict[str, float], dict[str, float]] = ({}, {})
        for skey, new in planned:
            old = data.read_latest(skey)
            if is_lock(old):
                # Nothing of the part is proposed yet: it fails as a whole, as a single write would.
                service.settle(hosted, UnitKind.WRITE, estimate, charged)
                raise TransactionConflictException(MSG_TRANSACTION_CONFLICT)
            charged += write_charge(old, new)
            if sized:
                old_item, new_item = decode_item(old), decode_item(new)
                sizes.append((None if old_item is None else item_size(old_item),
                              None if new_item is None else item_size(new_item)))
                if indexes:
                    for total, units in zip(index_units, index_write_charges(indexes, table_key, old_item, new_item),
                                            strict=True):
                        for name, value in units.items():
                            total[name] = total.get(name, 0.0) + value
            if new is None and old is None:
                continue  # deleting what is not there changes nothing
            effects.append(Effect(skey, new, old))
        service.settle(hosted, UnitKind.WRITE, estimate, charged)
        futures: list[asyncio.Future[Any]] = []
        for entry in _entries(effects):
            proposal_id = next(service._effect_ids)
            try:
                future = service.host.propose(hosted.group, service.entry(hosted, proposal_id, entry))
            except NotLeader as exc:
                if futures:  # part of the batch is proposed: its fate is for the log to tell
                    raise unavailable("leadership lost while proposing the batch") from None
                raise redirect(exc.leader_hint) from None
            except ProposalDropped:
                raise unavailable("too many writes in flight on this partition", not_applied=not futures) from None
            data.note_proposed(proposal_id, entry)
            proposed = [effect.key for effect in entry]
            for skey in proposed:
                hosted.last_proposal[skey] = future
            future.add_done_callback(functools.partial(forget_all, hosted.last_proposal, proposed))
            futures.append(future)
        if futures:
            await service._wait(asyncio.gather(*futures), cfg.write_timeout_ms,
                                "the batch may or may not have been applied")
        if not sized:
            return b'{"ok":{}}'
        return orjson.dumps({"ok": {"Sizes": sizes, "Local": index_units[0], "Global": index_units[1]}})


def _listed(hosted: Hosted, listed: EntryList, entries: KeyRange, after: tuple[bytes, bytes] | None,
            reverse: bool) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """(position, item) from the entry list, in order. Consumed without a yield to the event loop, so the
    list and the store it is read against are of one moment."""
    for entry, stored in listed.select(entries, after, reverse):
        item = decode_item(hosted.data.read_applied(stored))
        assert item is not None and listed.index.entry_key(item) == entry, "an entry list disagrees with the store"
        yield entry + stored, item


def _entries(effects: list[Effect]) -> list[list[Effect]]:
    """The effects cut into log entries of at most ``MAX_ENTRY_BYTES`` (one effect may exceed it alone):
    entries no bigger than a large single-item write, whatever the batch."""
    out: list[list[Effect]] = []
    size = 0
    for effect in effects:
        grows = len(effect.key) + len(effect.new or b"") + len(effect.old or b"")
        if not out or size + grows > MAX_ENTRY_BYTES:
            out.append([])
            size = 0
        out[-1].append(effect)
        size += grows
    return out
