"""`python -m control_plane --config <data>/cluster.json --node <name>`: a ddb control-plane process.

For now it runs the common process host with the Node service only; the role's own services plug in
through a `runtime.process.ProcessApp` subclass passed to `run_process`.
"""

from __future__ import annotations

from runtime.config import Role
from runtime.process import ProcessApp, run_process


def main() -> int:
    return run_process(Role.CONTROL, ProcessApp)


if __name__ == "__main__":
    raise SystemExit(main())
