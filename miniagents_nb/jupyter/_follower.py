"""Following streams without a task per token: the set that keeps followers alive, and the waker that wakes one.

A view (or chat) follows its streams with one task on the loop it was made on. Call events may come from the sync
facade's worker thread, so the waker crosses threads with `call_soon_threadsafe`; everything else stays on the
follower's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["FOLLOWERS", "Waker", "await_follower", "coalescing_pause", "is_current_task", "start_follower"]

FOLLOWERS: set[asyncio.Task[None]] = set()
"""Followers are referenced here until they end: the loop keeps tasks only weakly, and a follower whose streams
and view are no longer referenced anywhere else must still finish instead of being garbage-collected while pending."""


def start_follower(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run `coroutine` as a follower on `loop`, held in `FOLLOWERS` until it ends."""
    task = loop.create_task(coroutine)
    FOLLOWERS.add(task)
    task.add_done_callback(FOLLOWERS.discard)
    return task


async def await_follower(task: asyncio.Task[None]) -> None:
    """Wait for a follower from its own loop (run there with `run_coroutine_threadsafe`); its cancellation is its
    normal stop, not an error."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)


def is_current_task(task: asyncio.Task[None]) -> bool:
    try:
        return asyncio.current_task() is task
    except RuntimeError:  # no running loop in this thread
        return False


class Waker:
    """Wakes a follower from any thread (call events may come from the sync facade's worker thread)."""

    __slots__ = ("_future", "_loop", "_thread", "pausing", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._future: asyncio.Future[None] | None = None
        self.pending = False
        self.pausing = False  # in `coalescing_pause`: its owner wakes it at changes it would otherwise ignore

    def wake(self) -> None:
        if threading.get_ident() == self._thread or self._loop is None:
            self._set()
            return
        with contextlib.suppress(RuntimeError):  # that loop is closed: its follower is gone
            self._loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self.pending = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def waiter(self) -> asyncio.Future[None] | None:
        """A future done at the next wake-up; None when one is pending already (do not wait then)."""
        if self.pending or self._loop is None:
            return None
        if self._future is None or self._future.done():
            self._future = self._loop.create_future()
        return self._future


async def coalescing_pause(
    waker: Waker,
    until: float,
    ended: Callable[[], bool],
    end_waiters: Callable[[], list[asyncio.Future[None]]],
) -> None:
    """Hold a follower's next update until `until` (loop time), so that everything arriving meanwhile goes in one
    update; but once everything has `ended()` the final state goes out at once, not up to an interval late. So the
    pause wakes at the end of a stream (`end_waiters()`) or at the waker (a change of a call), never at a piece."""
    loop = asyncio.get_running_loop()
    waker.pausing = True
    try:
        while (delay := until - loop.time()) > 0 and not ended():
            waker.pending = False  # what it announced is in `ended()` above
            waiters = end_waiters()
            if (future := waker.waiter()) is not None:
                waiters.append(future)
            if waiters:
                await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(delay)
    finally:
        waker.pausing = False
