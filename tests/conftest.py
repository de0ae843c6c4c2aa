"""Shared fixtures: a real data directory with a real SQLite store in ``tmp_path``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Qt never needs a display in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app import organization  # noqa: E402
from app.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """A new organisation whose Default Policy is ``@example.com``."""
    opened = Store.open(data_dir)
    organization.initialize(opened, "Test Organization", "example.com")
    yield opened
    opened.close()
