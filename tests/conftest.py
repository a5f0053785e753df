"""Shared fixtures: a fresh workspace, the checked-in fixtures, and the optional ../shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CURATE_ACTOR", "tester")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "data" / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def workspace(tmp_path: Path):
    """A new, empty workspace in a temporary folder (SQLite)."""
    from curate.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    yield ws
    if "store" in ws.__dict__:
        ws.store.dispose()


@pytest.fixture
def fixtures() -> Path:
    """The checked-in tiny files, one per source format (data/fixtures)."""
    return FIXTURES


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared benchmark data is not next to this checkout")
    return path
