"""Helpers for the pre-packaged agents' tests."""

from __future__ import annotations

import asyncio
import io


class WatchedBuffer(io.StringIO):
    """An output stream a test can wait on: an event is set on every write (no polling with sleeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        self.changed.set()
        return written

    async def wait_for(self, text: str) -> None:
        while text not in self.getvalue():
            self.changed.clear()
            await self.changed.wait()
