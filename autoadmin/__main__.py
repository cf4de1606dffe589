"""`python -m autoadmin --config <data>/cluster.json --node <name>`: a ddb auto-admin process
(``autoadmin.app.AutoAdminApp`` on the common process host)."""

from __future__ import annotations

from autoadmin.app import AutoAdminApp
from runtime.config import Role
from runtime.process import run_process


def main() -> int:
    return run_process(Role.AUTOADMIN, AutoAdminApp)


if __name__ == "__main__":
    raise SystemExit(main())
