"""The pieces of one stream and the futures waiting for more: what every `StreamedPromise` and `StreamAppender`
holds (see `streamed.py`). A push is a list append, and wakes the waiters only if there are any.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from miniagents_nb.promising.loops import ForeignWaiter

__all__ = ["FinishedPieceStream", "PieceStream"]


class PieceStream:
    """The shared buffer behind a stream: pieces so far, whether it ended, who waits for more."""

    __slots__ = ("end_waiters", "finished", "on_finish", "pieces", "waiters")

    def __init__(self, pieces: list[Any] | None = None, finished: bool = False) -> None:
        self.pieces: list[Any] = [] if pieces is None else pieces
        self.finished = finished
        self.waiters: list[asyncio.Future[None] | ForeignWaiter] | None = None
        self.end_waiters: list[asyncio.Future[None] | ForeignWaiter] | None = None
        self.on_finish: Callable[[], None] | None = None

    def push(self, piece: Any) -> None:
        self.pieces.append(piece)
        if self.waiters:
            self._wake()

    def extend(self, pieces: Iterable[Any]) -> None:
        self.pieces.extend(pieces)
        if self.waiters:
            self._wake()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.waiters:
            self._wake()
        if self.end_waiters:
            end_waiters, self.end_waiters = self.end_waiters, None
            for future in end_waiters:
                if not future.done():
                    future.set_result(None)
        if self.on_finish is not None:
            callback, self.on_finish = self.on_finish, None
            callback()

    def wait(self, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[None]:
        """A future that completes at the next push or at the end (one per waiter: cancelling it harms no one).

        It belongs to `loop` (the running loop by default), which must be the loop the stream is pushed on: a waiter
        on another thread's loop goes through `StreamedPromise`, which hands it over (see `ForeignWaiter`).
        """
        future: asyncio.Future[None] = (loop or asyncio.get_running_loop()).create_future()
        if self.waiters is None:
            self.waiters = [future]
        else:
            self.waiters.append(future)
        return future

    def wait_end(self, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[None]:
        """A future that completes when the stream ends, and not before (pushes do not touch it)."""
        future: asyncio.Future[None] = (loop or asyncio.get_running_loop()).create_future()
        if self.end_waiters is None:
            self.end_waiters = [future]
        else:
            self.end_waiters.append(future)
        return future

    def push_wakes(self) -> None:
        """Wake the waiters after pieces were appended to `pieces` directly (a hot path that inlines `push`)."""
        self._wake()

    def _wake(self) -> None:
        waiters, self.waiters = self.waiters, None
        for future in waiters or ():
            if not future.done():
                future.set_result(None)


class FinishedPieceStream(tuple[Any, ...]):
    """A stream that has ended with these pieces, as one immutable object.

    Every prefilled promise (each replied string becomes one) holds such a stream, so it costs one object for the
    garbage collector to track instead of a `PieceStream` plus its list. It reads like a finished `PieceStream`.
    """

    __slots__ = ()

    finished = True
    waiters = None
    end_waiters = None
    on_finish = None

    @property
    def pieces(self) -> FinishedPieceStream:
        return self

    def finish(self) -> None:
        """Already finished."""
