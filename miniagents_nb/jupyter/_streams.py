"""Read replayable promises the way a view needs to: what has arrived so far, without a task per piece.

`async for` over a promise hands pieces over one at a time, so following many messages at once would take one
task per message and one wake-up per token. A view instead looks at the shared piece buffer of each stream on its
own schedule (at most ~20 times a second) and waits on all of them at once. This module is the one place that
touches the engine's buffers, so the views depend on a small, explicit surface of the core.
"""

from __future__ import annotations

import asyncio
from typing import Any

from miniagents_nb.messages import Message, MessagePromise
from miniagents_nb.promising.streamed import StreamedPromise

__all__ = [
    "Cursor",
    "cancel_stream",
    "message_text",
    "original_promise",
    "piece_text",
    "stream_finished",
    "stream_pieces",
]


def piece_text(piece: Any) -> str:
    """The text a token contributes (a plain `str` token is the common case, so it is checked first)."""
    if type(piece) is str:
        return piece
    return str(piece)


def stream_finished(promise: StreamedPromise[Any, Any]) -> bool:
    """Whether the producer of this promise's pieces has ended."""
    return bool(promise._stream.finished)


def stream_pieces(promise: StreamedPromise[Any, Any]) -> list[Any]:
    """The pieces produced so far (the shared buffer itself: read it, never change it)."""
    pieces: list[Any] = promise._stream.pieces
    return pieces


def cancel_stream(promise: StreamedPromise[Any, Any]) -> bool:
    """Stop a stream pumped by a background task of its own (a token streamer); its consumers then see
    `CancelledError` at that position. A stream pushed by an agent's own code ends when that agent is cancelled."""
    task = promise._pump_task
    if task is None or task.done():
        return False
    loop = task.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop is not running and loop.is_running():  # pumped on the sync facade's worker loop
        loop.call_soon_threadsafe(task.cancel)
        return True
    return task.cancel()


def original_promise(promise: MessagePromise) -> MessagePromise:
    """The promise an agent replied, seen through the `errors_as_messages` wrapper (senders are known by it)."""
    original = getattr(promise, "_original", None)
    return original if isinstance(original, MessagePromise) else promise


class Cursor:
    """One consumer's position in a promise's stream: take what arrived since last time, wait for more.

    Taking pieces starts the producer the way iterating would (a view is a consumer like any other). At most one
    waiter future is outstanding per cursor, so a stream that stays quiet for a long time does not collect one
    abandoned future per view update.
    """

    __slots__ = ("_index", "_waiter", "promise")

    def __init__(self, promise: StreamedPromise[Any, Any]) -> None:
        self.promise = promise
        self._index = 0
        self._waiter: asyncio.Future[None] | None = None

    @property
    def finished(self) -> bool:
        """Whether the producer ended and every piece was taken."""
        stream = self.promise._stream
        return stream.finished and self._index >= len(stream.pieces)

    @property
    def producer_ended(self) -> bool:
        """Whether the producer ended (pieces may still be waiting to be taken)."""
        return bool(self.promise._stream.finished)

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
        return new

    def waiter(self) -> asyncio.Future[None] | None:
        """A future done at the next piece or at the end (None when nothing more can come)."""
        stream = self.promise._stream
        if stream.finished:
            return None
        if self._waiter is None or self._waiter.done():
            self.promise._ensure_producing()
            self._waiter = stream.wait()
        return self._waiter

    def result(self) -> tuple[Any, BaseException | None]:
        """The resolved whole (or the failure) of a finished stream, computed now if nobody asked yet."""
        promise = self.promise
        if not promise.is_resolved:
            promise._resolve_when_finished()
        return promise._result, promise._error


def message_text(message: Any) -> str:
    """How a resolved message reads in a view."""
    if isinstance(message, Message):
        return str(message)
    return piece_text(message)
