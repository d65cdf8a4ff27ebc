"""Shared pytest fixtures: where the real data lives (../shared/data beside the repository)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """`$RSOIL_SHARED_DATA` or `../shared/data` beside the repository root."""
    return Path(os.environ.get("RSOIL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests that need it are skipped (with the reason) when it is absent."""
    d = shared_data_dir()
    if not (d / "README.md").is_file():
        pytest.skip(f"real data not found at {d} (set RSOIL_SHARED_DATA)")
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
