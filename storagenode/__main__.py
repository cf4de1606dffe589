"""`python -m storagenode --config <data>/cluster.json --node <name>`: a ddb storage process."""

from __future__ import annotations

from runtime.config import Role
from runtime.process import run_process
from storagenode.app import StorageApp


def main() -> int:
    return run_process(Role.STORAGE, StorageApp)


if __name__ == "__main__":
    raise SystemExit(main())
