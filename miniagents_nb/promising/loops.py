"""Waiting for a stream from another thread's event loop, and the loops a blocking `run()` holds up.

A stream's pieces are pushed on its own loop (its context's) and its waiters are futures woken there, with no lock.
A waiter on another thread's loop would be woken from the wrong thread (asyncio futures are not thread-safe, and
that loop may sleep through it), so it is registered on the stream's loop instead, thread-safely, and its wake-up
is handed back the same way. Only such waiters pay for it; on the stream's own loop a wait costs one identity check.

When the stream's loop cannot run at all, because its thread waits in `run()` for a worker thread's loop that
awaits the stream (a notebook cell's `MiniAgents().run(...)`), the wait fails at once with `ForeignLoopError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from miniagents_nb.errors import ForeignLoopError

__all__ = ["ForeignWaiter", "check_loop_can_wake", "hand_over_waiter", "loop_blocked"]

_blocked_loops: dict[asyncio.AbstractEventLoop, int] = {}
"""Running loops whose thread waits in `run()` for a blocking runner (how many times over): nothing runs on them."""


@contextmanager
def loop_blocked(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Mark `loop` as held up while its thread blocks (in `run()`, for a blocking runner)."""
    _blocked_loops[loop] = _blocked_loops.get(loop, 0) + 1
    try:
        yield
    finally:
        if _blocked_loops[loop] == 1:
            del _blocked_loops[loop]
        else:
            _blocked_loops[loop] -= 1


def check_loop_can_wake(home: asyncio.AbstractEventLoop) -> None:
    """Raise `ForeignLoopError` when `home`'s thread is blocked waiting for a `run()`: nothing would wake there."""
    if _blocked_loops.get(home):
        raise ForeignLoopError(
            "This promise is produced on the event loop of another thread, which is blocked until this `run()` "
            "returns (e.g. a notebook cell's `MiniAgents().run(...)`), so it can never be awaited here: `await` it "
            "in a cell of its own, or start it inside the `run()`."
        )


class ForeignWaiter:
    """Stands in a stream's waiter list for a future of another thread's loop: waking it is handed to that loop.

    It is woken on the stream's own loop, and hands the wake-up over at that loop's next step, so whatever woke it
    (e.g. the end of the stream, which also resolves the promise) is complete when the other thread looks.
    """

    __slots__ = ("_future", "_woken")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self._future = future
        self._woken = False

    def done(self) -> bool:
        return self._woken

    def set_result(self, _result: None) -> None:
        if self._woken:
            return
        self._woken = True
        try:
            asyncio.get_running_loop().call_soon(self._hand_over)
        except RuntimeError:  # woken outside any loop (a push from sync code): hand it over now
            self._hand_over()

    def _hand_over(self) -> None:
        try:
            self._future.get_loop().call_soon_threadsafe(_set_if_pending, self._future)
        except RuntimeError:  # that loop is closed: nobody waits any more
            pass


def _set_if_pending(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Stream(Protocol):
    """A `PieceStream` as seen from here (it lives with the promises that own it)."""

    pieces: Any
    finished: bool
    waiters: list[Any] | None
    end_waiters: list[Any] | None


def hand_over_waiter(
    stream: Callable[[], _Stream],
    start: Callable[[], None],
    loop: asyncio.AbstractEventLoop,
    home: asyncio.AbstractEventLoop,
    end: bool,
) -> asyncio.Future[None]:
    """A future of `loop` done at the next piece of `stream()` (with `end`: at its end), which `home` produces.

    `start()` (starting the producer, under the promise's context) and the registration run on `home`; the
    pieces seen here so far are counted now, so a piece pushed meanwhile wakes the future at once.
    """
    check_loop_can_wake(home)
    future: asyncio.Future[None] = loop.create_future()
    waiter = ForeignWaiter(future)
    seen = len(stream().pieces)

    def register() -> None:  # on the stream's own loop, where every push happens
        start()
        current = stream()
        if current.finished or (not end and len(current.pieces) != seen):
            waiter.set_result(None)
        elif end:
            current.end_waiters = [*(current.end_waiters or ()), waiter]
        else:
            current.waiters = [*(current.waiters or ()), waiter]

    home.call_soon_threadsafe(register)
    return future
