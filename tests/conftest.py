"""Shared fixtures: keep this small. Generated protobuf code is built once per session."""

from __future__ import annotations

import pytest

from proto.build import ensure_built


@pytest.fixture(scope="session", autouse=True)
def _protos_built() -> None:
    ensure_built()
