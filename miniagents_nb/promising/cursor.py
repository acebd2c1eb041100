"""`StreamCursor`: read a replayable stream the way an observer needs to, without a task or a wake-up per piece.

`async for` over a promise hands pieces over one at a time, so following many streams at once that way takes one
task per stream and one wake-up per token. An observer (a live view, a recorder, an exporter) instead keeps a cursor
per stream, takes everything that arrived since its last look, on its own schedule, and waits on many streams at
once with `asyncio.wait` over their `waiter()`s. The producer pays nothing for this: pieces go into the one buffer
every consumer replays, and a cursor that is never read costs nothing at all.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from miniagents_nb.errors import PromiseNotReadyError
from miniagents_nb.promising.streamed import StreamedPromise

__all__ = ["StreamCursor"]

PIECE = TypeVar("PIECE")
WHOLE = TypeVar("WHOLE")


class StreamCursor(Generic[PIECE, WHOLE]):
    """One reader's position in a `StreamedPromise`: take what arrived since last time, wait for more.

    Taking pieces starts the producer the way iterating would (a reader is a consumer like any other). Exceptions
    are pieces too, at their position (a reader sees them; iterating would raise them). At most one waiter future
    is outstanding per cursor, so a stream that stays quiet for a long time does not collect one abandoned future
    per look. A cursor belongs to the event loop of the stream it reads.
    """

    __slots__ = ("_end_waiter", "_index", "_waiter", "promise")

    def __init__(self, promise: StreamedPromise[PIECE, WHOLE]) -> None:
        self.promise = promise
        self._index = 0
        self._waiter: asyncio.Future[None] | None = None
        self._end_waiter: asyncio.Future[None] | None = None

    @property
    def position(self) -> int:
        """How many pieces were taken so far."""
        return self._index

    @property
    def finished(self) -> bool:
        """Whether the producer ended and every piece was taken."""
        stream = self.promise._stream
        return stream.finished and self._index >= len(stream.pieces)

    @property
    def producer_ended(self) -> bool:
        """Whether the producer ended (pieces may still be waiting to be taken)."""
        return bool(self.promise._stream.finished)

    def peek(self) -> list[Any]:
        """Every piece produced so far, from the first (the shared buffer itself: read it, never change it)."""
        pieces: list[Any] = self.promise._stream.pieces
        return pieces

    def take(self) -> list[Any]:
        """The pieces that arrived since the last call (exceptions included, as pieces)."""
        stream = self.promise._stream
        pieces = stream.pieces
        if self._index >= len(pieces):
            if not stream.finished:
                self.promise._ensure_producing()
            return []
        new = pieces[self._index :]
        self._index = len(pieces)
        return new if type(new) is list else list(new)

    def waiter(self) -> asyncio.Future[None] | None:
        """A future done at the next piece or at the end (None when nothing more can come)."""
        stream = self.promise._stream
        if stream.finished:
            return None
        if self._waiter is None or self._waiter.done():
            self._waiter = self.promise._new_waiter()
        return self._waiter

    def end_waiter(self) -> asyncio.Future[None] | None:
        """A future done when the producer ends, not at each piece (None when it has ended already).

        For an observer that holds its next update back for a while (to coalesce pieces) but must not hold back
        the final one: it waits on this instead of `waiter()`, which would wake it at every piece. One future per
        cursor, whoever asks how often.
        """
        stream = self.promise._stream
        if stream.finished:
            return None
        if self._end_waiter is None:
            self._end_waiter = self.promise._new_waiter(end=True)
        return self._end_waiter

    def result(self) -> tuple[WHOLE | None, BaseException | None]:
        """`(whole, None)` or `(None, error)` for a stream whose producer ended (computed now if nobody asked yet).

        Raises `PromiseNotReadyError` while the whole is not known yet (the producer still runs, or, for a message
        sequence, some of its messages still stream).
        """
        try:
            return self.promise.result_now(), None
        except PromiseNotReadyError:
            raise
        except BaseException as error:
            return None, error
