"""Helpers shared by the core test modules (importable as `support`: pytest puts `tests/` on `sys.path`)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["END", "next_or_end", "switches", "texts"]

END = object()
"""What `next_or_end` returns when the iterator is exhausted."""


async def switches(n: int = 30) -> None:
    """Give every ready task `n` chances to run (explicit task switches, no timing)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def next_or_end(iterator: Any) -> Any:
    """The next item of an async iterator, or `END`."""
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return END


async def texts(sequence: Any) -> list[str]:
    """The text of every message of a sequence, in order."""
    return [str(await promise) async for promise in sequence]
