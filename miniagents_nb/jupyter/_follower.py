"""Following streams without a task per token: the set that keeps followers alive, and the waker that wakes one.

A view (or chat) follows its streams with one task on the loop it was made on. Call events may come from the sync
facade's worker thread, so the waker crosses threads with `call_soon_threadsafe`; everything else stays on the
follower's loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = [
    "ALL_VIEWS_MAX_MESSAGES_PER_SECOND",
    "BUDGET",
    "FOLLOWERS",
    "MessageBudget",
    "Waker",
    "await_follower",
    "coalescing_pause",
    "is_current_task",
    "start_follower",
    "wait_for_budget",
]

ALL_VIEWS_MAX_MESSAGES_PER_SECOND = 500
"""What every view and chat together may send to the front end in any second, final states and display updates
included: half of jupyter_server's IOPub limit (1,000 a second over a 3 s window, beyond which it drops messages
silently), so that the cells' own output has room too."""

FOLLOWERS: set[asyncio.Task[None]] = set()
"""Followers are referenced here until they end: the loop keeps tasks only weakly, and a follower whose streams
and view are no longer referenced anywhere else must still finish instead of being garbage-collected while pending."""


class MessageBudget:
    """The front-end messages all views may send, shared by every follower (of any loop and thread): at most
    `per_second` in any second, counted when they go out, so that 1,200 views ending at once go out over a few
    seconds instead of at once, however late a busy loop wakes them.

    `take(n)` either books `n` messages now (0.0) or says how long to wait before asking again: the waiters are
    spread over the time their backlog needs, so they do not wake in a herd.
    """

    __slots__ = ("_in_window", "_lock", "_sent", "_waiting", "per_second")

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._sent: collections.deque[tuple[float, int]] = collections.deque()
        self._in_window = 0
        self._waiting = 0
        self._lock = threading.Lock()

    def _book(self, messages: int) -> bool:
        now = time.monotonic()
        while self._sent and self._sent[0][0] <= now - 1.0:
            self._in_window -= self._sent.popleft()[1]
        if self._sent and self._in_window + messages > self.per_second:
            return False
        self._sent.append((now, messages))
        self._in_window += messages
        return True

    def take(self, messages: int, *, waiting: bool = False) -> float:
        """Book `messages` now (returns 0.0), or return the seconds to wait before asking again (then ask with
        `waiting=True`, and call `stop_waiting()` if one gives up)."""
        with self._lock:
            if self._book(messages):
                if waiting:
                    self._waiting -= 1
                return 0.0
            if not waiting:
                self._waiting += 1
            until_room = self._sent[0][0] + 1.0 - time.monotonic()
            spread = self._waiting * messages / self.per_second
            return max(0.001, until_room) + random.random() * spread

    def stop_waiting(self) -> None:
        with self._lock:
            self._waiting -= 1

    def try_take(self, messages: int) -> bool:
        """Book `messages` only if they may go out now (for the sync refreshes, which cannot wait)."""
        with self._lock:
            return self._book(messages)


BUDGET = MessageBudget(ALL_VIEWS_MAX_MESSAGES_PER_SECOND)


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


async def wait_for_budget(messages: Callable[[], int], stopped: Callable[[], bool]) -> bool:
    """Wait until `BUDGET` lets `messages()` go out (booked then); False when `stopped()` came first."""
    delay = BUDGET.take(messages())
    if delay == 0.0:
        return True
    try:
        while True:
            await asyncio.sleep(delay)
            if stopped():
                BUDGET.stop_waiting()
                return False
            delay = BUDGET.take(messages(), waiting=True)
            if delay == 0.0:
                return True
    except BaseException:
        BUDGET.stop_waiting()
        raise


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
