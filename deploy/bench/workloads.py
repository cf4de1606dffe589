"""The workloads: YCSB's core workloads A-F and the plain put / get / query, and the chooser that draws
their operations and keys.

YCSB (core workload definitions, ``workloads/workload[a-f]``):
  A  update heavy      50 % read, 50 % update                       zipfian
  B  read mostly       95 % read,  5 % update                       zipfian
  C  read only        100 % read                                    zipfian
  D  read latest       95 % read,  5 % insert                       latest
  E  short scans       95 % scan,  5 % insert, scan length 1-100    zipfian
  F  read-modify-write 50 % read, 50 % read-modify-write            zipfian
A "read" is GetItem, an "update" an UpdateItem of the value attribute, an "insert" a PutItem of a new record,
a "read-modify-write" a GetItem then an UpdateItem of the same record (one operation, timed as a whole).
E's "scan" is a Query, not a Scan: the table is hash+range with 100 records per partition key, and a scan
of length L starting at record r is ``pk = group(r) AND sk >= offset(r)`` with ``Limit L``; it stops at the
end of its partition key, so scans starting late in a group return fewer than L items (YCSB's scans cross
into the next keys in order, which a hash-partitioned table has no cheap way to do).
The plain ones: ``put`` is PutItem on uniform keys of an empty table, ``get`` GetItem on uniform keys,
``query`` a Query returning the 10 items of a uniformly chosen partition key, ``query-gsi`` a Query on a
global secondary index returning 10 items (of 10 partition keys, spread over the table's partitions) for a
uniformly chosen index key, eventually consistent as GSI reads must be. ``txn`` is a TransactWriteItems
putting two records drawn uniformly (two partition keys, so usually two partitions: a two-phase commit);
one cancelled by a conflict counts as failed.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from deploy.bench.keys import AcknowledgedCounter, Latest, ScrambledZipfian, Uniform


class Op(enum.Enum):
    READ = "read"
    UPDATE = "update"
    INSERT = "insert"
    SCAN = "scan"
    READ_MODIFY_WRITE = "read-modify-write"
    PUT = "put"
    QUERY = "query"
    QUERY_INDEX = "query-index"
    TRANSACT = "transact"


class Distribution(enum.Enum):
    ZIPFIAN = "zipfian"
    UNIFORM = "uniform"
    LATEST = "latest"


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    title: str
    mix: tuple[tuple[Op, float], ...]
    distribution: Distribution
    items_per_key: int = 1
    # False: the table is created empty (put writes the records itself).
    load_records: bool = True
    max_scan_length: int = 100
    # > 0: the table has a GSI ``by_g`` on a string ``g`` shared by this many consecutive records (whose
    # partition keys, one per record, hash all over the table).
    index_group: int = 0

    def proportion(self, op: Op) -> float:
        return sum(share for o, share in self.mix if o is op)


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("a", "YCSB A: update heavy", ((Op.READ, 0.5), (Op.UPDATE, 0.5)), Distribution.ZIPFIAN),
    Workload("b", "YCSB B: read mostly", ((Op.READ, 0.95), (Op.UPDATE, 0.05)), Distribution.ZIPFIAN),
    Workload("c", "YCSB C: read only", ((Op.READ, 1.0),), Distribution.ZIPFIAN),
    Workload("d", "YCSB D: read latest", ((Op.READ, 0.95), (Op.INSERT, 0.05)), Distribution.LATEST),
    Workload("e", "YCSB E: short scans (Query)", ((Op.SCAN, 0.95), (Op.INSERT, 0.05)), Distribution.ZIPFIAN,
             items_per_key=100),
    Workload("f", "YCSB F: read-modify-write", ((Op.READ, 0.5), (Op.READ_MODIFY_WRITE, 0.5)),
             Distribution.ZIPFIAN),
    Workload("put", "PutItem, uniform keys", ((Op.PUT, 1.0),), Distribution.UNIFORM, load_records=False),
    Workload("get", "GetItem, uniform keys", ((Op.READ, 1.0),), Distribution.UNIFORM),
    Workload("query", "Query of 10 items, uniform partition keys", ((Op.QUERY, 1.0),), Distribution.UNIFORM,
             items_per_key=10),
    Workload("query-gsi", "Query of 10 items on a GSI, uniform index keys", ((Op.QUERY_INDEX, 1.0),),
             Distribution.UNIFORM, index_group=10),
    Workload("txn", "TransactWriteItems of 2 puts, uniform keys", ((Op.TRANSACT, 1.0),), Distribution.UNIFORM,
             load_records=False),
)}

# How many tries to draw a key that exists before falling back to a uniform one (inserts in flight).
MAX_KEY_DRAWS = 100


class Chooser:
    """Draws the next operation and its record for a workload; one shared by all clients of a run."""

    def __init__(self, workload: Workload, records: int, rng: random.Random, expected_ops: int | None = None) -> None:
        assert records >= 1
        self.workload = workload
        self.records = records
        self._rng = rng
        self._ops = [op for op, _ in workload.mix]
        total = sum(share for _, share in workload.mix)
        self._cumulative: list[float] = []
        running = 0.0
        for _, share in workload.mix:
            running += share / total
            self._cumulative.append(running)
        self._cumulative[-1] = 1.0
        self.inserts = AcknowledgedCounter(records)
        # YCSB sizes the zipfian range for the keys inserts will add (twice the expected count), then
        # redraws any key not inserted yet.
        insert_share = workload.proportion(Op.INSERT)
        expected_new = int((expected_ops if expected_ops is not None else records) * insert_share * 2)
        self._chooser: ScrambledZipfian | Uniform | Latest
        if workload.distribution is Distribution.ZIPFIAN:
            self._chooser = ScrambledZipfian(rng, 0, records + expected_new - 1)
        elif workload.distribution is Distribution.LATEST:
            self._chooser = Latest(rng, self.inserts)
        else:
            self._chooser = Uniform(rng, 0, records - 1)

    def next_op(self) -> Op:
        if len(self._ops) == 1:
            return self._ops[0]
        u = self._rng.random()
        for op, bound in zip(self._ops, self._cumulative, strict=True):
            if u < bound:
                return op
        return self._ops[-1]

    def next_record(self) -> int:
        """A record that exists (loaded, or inserted and acknowledged)."""
        last = self.inserts.last_value
        for _ in range(MAX_KEY_DRAWS):
            record = self._chooser.next_value()
            if record <= last:
                return record
        return self._rng.randint(0, last)

    def next_insert(self) -> int:
        return self.inserts.next_value()

    def acknowledge_insert(self, record: int) -> None:
        self.inserts.acknowledge(record)

    def scan_length(self) -> int:
        return self._rng.randint(1, self.workload.max_scan_length)

    def next_value_index(self, pool_size: int) -> int:
        return self._rng.randrange(pool_size)
