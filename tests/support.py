"""Helpers shared by the core test modules (importable as `support`: pytest puts `tests/` on `sys.path`; pytest
advises against importing `conftest`, so shared helpers live here and fixtures stay in `conftest.py`).

Ordering is proved with explicit events: a `Recorded` list wakes whoever waits on it at the append that makes
its condition true. Counting task switches (`switches`) is only for proving that something does *not* happen
while every ready task gets its chances, or for the one property that is about task switches themselves (an agent
starts at the next one).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from miniagents_nb import Message, MiniAgents

__all__ = [
    "END",
    "Recorded",
    "batch_recorder",
    "expected_hash",
    "expected_serialized",
    "fresh",
    "next_or_end",
    "run_script",
    "unwritable_directory",
    "switches",
    "texts",
]

T = TypeVar("T")

END = object()
"""What `next_or_end` returns when the iterator is exhausted."""


async def switches(n: int = 30) -> None:
    """Give every ready task `n` chances to run: for asserting that something has *not* happened (yet)."""
    for _ in range(n):
        await asyncio.sleep(0)


class Recorded(list[T]):
    """A list that tests wait on: `await log.until(lambda log: ...)` returns at the append that makes it true."""

    def __init__(self) -> None:
        super().__init__()
        self._appended = asyncio.Event()

    def append(self, item: T) -> None:
        super().append(item)
        self._appended.set()

    async def until(self, condition: Callable[[list[T]], bool]) -> None:
        while not condition(self):
            self._appended.clear()
            await self._appended.wait()


async def next_or_end(iterator: Any) -> Any:
    """The next item of an async iterator, or `END`."""
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return END


async def texts(sequence: Any) -> list[str]:
    """The text of every message of a sequence, in order."""
    return [str(await promise) async for promise in sequence]


def fresh(text: str) -> str:
    """A new (non-interned) str object, so that identity checks are meaningful."""
    return "".join(list(text))


def expected_serialized(data: dict[str, Any]) -> str:
    """The `serialized` form a frozen object with these fields must have (computed independently of the package)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def expected_hash(data: dict[str, Any], length: int = 40) -> str:
    """The `hash_key` a frozen object with these fields must have."""
    return hashlib.sha256(expected_serialized(data).encode("utf-8")).hexdigest()[:length]


def batch_recorder(mini_agents: MiniAgents) -> list[list[Message]]:
    """Every batch `mini_agents` hands to its `on_persist_messages` handlers, in order."""
    batches: list[list[Message]] = []

    @mini_agents.on_persist_messages
    async def record(messages: Any) -> None:
        batches.append(list(messages))

    return batches


REPO_ROOT = Path(__file__).resolve().parents[1]


def run_script(
    code: str, *args: str, timeout: float = 25.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (for hangs, leaked interrupts, process-wide settings such as
    `PYTHONHASHSEED`); one that does not end within `timeout` seconds fails the test as a hang, with its output."""
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout
    pytest.fail(f"The script hung (no end after {timeout} s). Its output so far: {output!r}")


def unwritable_directory(tmp_path: Path) -> Path:
    """A directory nobody can create files in: read-only for a normal user; under /proc for root (who may write
    anywhere else)."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o500)
    if not os.access(directory, os.W_OK):
        return directory
    return Path("/proc/miniagents-nb-no-such-directory")
