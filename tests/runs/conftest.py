"""Fixtures of the run store tests: a real SQLite file in `tmp_path`, written quickly, closed after the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents_nb.runs import RunStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.sqlite"


@pytest.fixture
def store(store_path: Path) -> Iterator[RunStore]:
    with RunStore(store_path, flush_interval_s=0.01, token_sample_interval_s=0.001) as opened:
        yield opened
