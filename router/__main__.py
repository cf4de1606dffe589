"""`python -m router --config <data>/cluster.json --node rr-1`: a ddb request router."""

from __future__ import annotations

from router.app import RouterApp
from runtime.config import Role
from runtime.process import run_process


def main() -> int:
    return run_process(Role.ROUTER, RouterApp)


if __name__ == "__main__":
    raise SystemExit(main())
