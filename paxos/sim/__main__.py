"""CLI: run seeded simulations of a replication group under faults; a failing seed prints a trace."""

from __future__ import annotations

import argparse
import sys
import time

from paxos.sim.cluster import InvariantViolation, SimOptions, run_seed
from paxos.sim.variants import VARIANTS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paxos.sim", description=__doc__)
    ap.add_argument("--seeds", type=int, default=100, help="run seeds 1..N (or --first..)")
    ap.add_argument("--first", type=int, default=1, help="first seed of --seeds")
    ap.add_argument("--seed", type=int, help="replay exactly this one seed")
    ap.add_argument("--replicas", type=int, default=3, choices=[3, 5])
    ap.add_argument("--groups", type=int, default=1, help="replication groups sharing the machines")
    ap.add_argument("--steps", type=int, default=250, help="ticks of the faulty phase")
    ap.add_argument("--variant", choices=sorted(VARIANTS), help="run a deliberately BROKEN replica")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first failing seed")
    args = ap.parse_args(argv)
    opts = SimOptions(replicas=args.replicas, groups=args.groups, ticks=args.steps)
    if args.variant:
        opts.replica_factory = VARIANTS[args.variant]
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    failures = 0
    events = 0
    start = time.perf_counter()
    for seed in seeds:
        try:
            sim = run_seed(seed, opts)
            events += sim.stats["events"]
            if args.seed is not None:
                print(f"seed {seed}: ok {sim.stats}")
        except InvariantViolation as exc:
            failures += 1
            print(exc, file=sys.stderr)
            if not args.keep_going:
                break
    elapsed = time.perf_counter() - start
    ran = len(seeds) if args.keep_going or not failures else seeds.index(seed) + 1
    print(f"{ran} seeds, {failures} failed, {elapsed:.1f}s, {ran / elapsed:.1f} seeds/s, {events} events")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
