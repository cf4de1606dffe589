"""The deterministic simulator of ``paxos`` groups: ``python -m paxos.sim --seeds 1000``."""

from paxos.sim.cluster import InvariantViolation, SimOptions, Simulation, run_seed

__all__ = ["InvariantViolation", "SimOptions", "Simulation", "run_seed"]
