"""`python -m control_plane --config <data>/cluster.json --node <name>`: a ddb control-plane process."""

from __future__ import annotations

from control_plane.app import ControlPlaneApp
from runtime.config import Role
from runtime.process import run_process


def main() -> int:
    return run_process(Role.CONTROL, ControlPlaneApp)


if __name__ == "__main__":
    raise SystemExit(main())
