"""The deterministic simulator of ``paxos`` groups (impure on purpose: it owns the seeded randomness).

    python -m paxos.sim --seeds 1000              # seeds 1..1000, every fault kind on; prints seeds/s
    python -m paxos.sim --seed 17                 # replay one seed exactly
    python -m paxos.sim --seeds 200 --replicas 5 --groups 3 --steps 500
    python -m paxos.sim --seeds 50 --variant no-adoption   # a deliberately BROKEN replica: must fail

Fault model and checks: see ``paxos.sim.cluster``. Broken variants: ``paxos.sim.variants``. The
linearizability checker: ``paxos.sim.linearizability``.
"""

from paxos.sim.cluster import InvariantViolation, SimOptions, Simulation, run_seed

__all__ = ["InvariantViolation", "SimOptions", "Simulation", "run_seed"]
