"""`StreamedPromise` and `StreamAppender`: replayable streams of pieces.

Every piece produced is kept in one list. Each consumer replays that list from the start and then waits for more,
so the producer runs once no matter how many consumers there are. Handing a piece to a waiting consumer costs a
list append and one future; there is no lock, queue or task per piece.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from typing_extensions import Self

from miniagents_nb.errors import (
    AppenderClosedError,
    AppenderNotOpenError,
    FunctionNotProvidedError,
    InvalidArgumentsError,
    SyncContextManagerError,
)
from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.loops import hand_over_waiter
from miniagents_nb.promising.piece_stream import FinishedPieceStream, PieceStream
from miniagents_nb.promising.promise import Promise, PromiseResolver
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["FinishedPieceStream", "PieceStream", "PromiseStreamer", "StreamAppender", "StreamedPromise"]

PIECE = TypeVar("PIECE")
WHOLE = TypeVar("WHOLE")

PromiseStreamer = Callable[[Any], AsyncIterator[Any]]
"""`def streamer(streamed_promise) -> AsyncIterator[piece]`."""


class _ReplayIterator(AsyncIterator[Any]):
    """One consumer's position in a stream; exceptions stored as pieces are raised where they stand."""

    __slots__ = ("_index", "_pieces", "_source")

    def __init__(self, source: StreamedPromise[Any, Any] | StreamAppender[Any]) -> None:
        self._source = source
        self._pieces = source._stream.pieces  # the one list a stream ever has: read without a lookup per piece
        self._index = 0

    def __aiter__(self) -> _ReplayIterator:
        return self

    async def __anext__(self) -> Any:
        pieces = self._pieces
        index = self._index
        if index < len(pieces):  # the piece is there already (what a fast producer leaves): no waiting
            piece = pieces[index]
            self._index = index + 1
            if isinstance(piece, BaseException):
                raise piece
            return piece
        if self._source._stream.finished:  # the end, seen without a second coroutine
            raise StopAsyncIteration
        return await self._anext_waiting()

    async def _anext_waiting(self) -> Any:
        while True:
            stream = self._source._stream
            index = self._index
            if index < len(stream.pieces):
                piece = stream.pieces[index]
                self._index = index + 1
                if isinstance(piece, BaseException):
                    raise piece
                return piece
            if stream.finished:
                raise StopAsyncIteration
            await self._source._new_waiter()


class StreamedPromise(Promise[WHOLE], Generic[PIECE, WHOLE]):
    """A promise of a whole that is also a replayable stream of its pieces.

    The producer is `streamer(promise)` (an async iterator, pumped by one background task), a `StreamAppender`
    (pieces pushed synchronously, no task at all), or `prefill_pieces`. Exceptions raised by the producer are stored
    as pieces: consumers get them raised at their position and may go on iterating.
    """

    __slots__ = ("_pump_task", "_stream", "_streamer_fn")

    def __init__(
        self,
        *,
        streamer: PromiseStreamer | StreamAppender[Any] | PieceStream | None = None,
        prefill_pieces: Iterable[Any] | Sentinel = NO_VALUE,
        resolver: PromiseResolver | None = None,
        prefill_result: Any = NO_VALUE,
        start_soon: bool | Sentinel = NO_VALUE,
    ) -> None:
        if streamer is not None and prefill_pieces is not NO_VALUE:
            raise InvalidArgumentsError(
                "Cannot provide both 'streamer' and 'prefill_pieces' parameters: pass one of them."
            )
        self._pump_task: asyncio.Task[None] | None = None
        self._streamer_fn: PromiseStreamer | None = None
        if isinstance(streamer, StreamAppender):
            self._stream = streamer._stream
        elif isinstance(streamer, PieceStream):  # fed directly by its owner (e.g. a message sequence)
            self._stream = streamer
        elif prefill_pieces is not NO_VALUE:
            self._stream = cast(PieceStream, FinishedPieceStream(prefill_pieces))  # type: ignore[arg-type]
        else:
            self._stream = PieceStream()
            self._streamer_fn = streamer
            if streamer is None and type(self)._astreamer is StreamedPromise._astreamer:
                raise FunctionNotProvidedError(
                    f"{type(self).__name__} has nothing to stream: pass `streamer=` or `prefill_pieces=`, "
                    "or override `_astreamer`."
                )
        super().__init__(start_soon=start_soon, resolver=resolver, prefill_result=prefill_result)
        if not self._stream.finished:
            self._stream.on_finish = self._on_stream_finished

    # --- producing -----------------------------------------------------------------------------------------------

    def _start_soon(self) -> None:
        self._ensure_producing()

    def _ensure_producing(self) -> None:
        """Start the pump task if this stream is pulled from an async iterator that nobody pumps yet."""
        if self._pump_task is None and not self._stream.finished and self._is_pumped():
            self._pump_task = self._ctx.start_soon(self._apump())

    def _is_pumped(self) -> bool:
        return self._streamer_fn is not None or type(self)._astreamer is not StreamedPromise._astreamer

    def _astreamer(self) -> AsyncIterator[PIECE]:
        """Produce the pieces; subclasses override this, or pass `streamer=` to the constructor."""
        raise FunctionNotProvidedError(f"{type(self).__name__} has no streamer.")

    async def _apump(self) -> None:
        stream = self._stream
        try:
            iterator = self._streamer_fn(self) if self._streamer_fn is not None else self._astreamer()
            next_piece = iterator.__anext__
            while True:
                try:
                    piece = await next_piece()
                except StopAsyncIteration:
                    break
                except Exception as error:  # stored where it happened; an iterator may go on after it
                    stream.push(error)
                    continue
                stream.push(piece)
        except BaseException as error:  # the streamer could not start, or an interrupt: it ends the stream
            stream.push(error)
            if isinstance(error, asyncio.CancelledError):
                stream.finish()
                raise
        stream.finish()

    def cancel_producer(self) -> bool:
        """Stop a stream pumped by a background task of its own (a `streamer=`); consumers then meet
        `CancelledError` at that position. Returns False when there is no such task running (an appender's stream
        ends when its owner closes it). Safe to call from another thread than the stream's loop.
        """
        task = self._pump_task
        if task is None or task.done():
            return False
        loop = task.get_loop()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not running and loop.is_running():
            loop.call_soon_threadsafe(task.cancel)
            return True
        return task.cancel()

    def _current_stream(self) -> PieceStream:
        return self._stream

    def _start_under_own_context(self) -> None:
        if self._ctx.is_active:  # what it starts (an agent, a pump) runs under the promise's own context
            self._ctx.make_current_here()
        self._ensure_producing()

    @property
    def producer_ended(self) -> bool:
        """Whether every piece exists (the stream was produced to its end)."""
        return bool(self._stream.finished)

    @property
    def pieces_so_far(self) -> list[Any]:
        """Every piece produced so far, exceptions included (the shared replay buffer: read it, never change it)."""
        pieces: list[Any] = self._stream.pieces
        return pieces

    def wait_for_more(self) -> asyncio.Future[None]:
        """A future done at the next piece or at the end of the stream (starting the producer if needed)."""
        return self._new_waiter()

    def _new_waiter(self, end: bool = False) -> asyncio.Future[None]:
        """A future of the running loop done at the next piece (with `end`: at the end), starting the producer.

        Every wait goes through here. On the loop the stream is produced on (the context's), that costs one identity
        check; from another thread's running loop, the waiter is registered on the stream's loop, thread-safely.
        """
        loop = asyncio.get_running_loop()
        home = self._ctx._home_loop
        if home is not None and home is not loop:
            home = self._ctx.foreign_home_loop(loop)
            if home is not None:
                return hand_over_waiter(self._current_stream, self._start_under_own_context, loop, home, end)
        seen = len(self._stream.pieces)
        self._ensure_producing()
        stream = self._stream
        if stream.finished or (not end and len(stream.pieces) != seen):
            # Starting the producer pushed or ended synchronously (e.g. a call that fails at once when started):
            # nothing else would wake this waiter, so it is done already.
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        return stream.wait_end(loop) if end else stream.wait(loop)

    def result_now(self) -> WHOLE:
        """The whole without waiting, once the producer ended (built now if nobody asked yet); see `Promise`."""
        if self._result is NO_VALUE and self._error is None and self._resolver_fn is None and self._stream.finished:
            self._resolve_when_finished()
        return super().result_now()

    def _on_stream_finished(self) -> None:
        """Resolve right away when someone listens for resolutions (persistence, views); otherwise lazily."""
        if self._resolver_fn is None and self._ctx.has_resolution_work() and not self.is_resolved:
            self._resolve_when_finished()

    def _resolve_when_finished(self) -> None:
        try:
            whole = self._whole_from_pieces(self._stream.pieces)
        except BaseException as error:
            self._set_error(error)
        else:
            self._set_result(whole)

    # --- consuming -----------------------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[PIECE]:
        return _ReplayIterator(self)

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncIterator[PIECE]:
        """Iterate (so a promise can serve as another promise's streamer)."""
        return _ReplayIterator(self)

    async def _aall_pieces(self) -> list[Any]:
        """Wait until the stream has ended and return every piece (exceptions included, not raised)."""
        stream = self._stream
        while not stream.finished:
            await self._new_waiter()
            stream = self._stream
        return stream.pieces

    def _whole_from_pieces(self, pieces: list[Any]) -> WHOLE:
        """The whole made of the pieces; raises the first exception piece."""
        for piece in pieces:
            if isinstance(piece, BaseException):
                raise piece
        return tuple(pieces)  # type: ignore[return-value]

    async def _aresolver(self) -> WHOLE:
        if self._resolver_fn is not None:
            return await self._resolver_fn(self)  # type: ignore[no-any-return]
        return self._whole_from_pieces(await self._aall_pieces())

    async def aresolve(self) -> WHOLE:
        """Wait for the stream to end and return the whole (computed once; the same object every time)."""
        if self._resolver_fn is not None or self._result is not NO_VALUE or self._error is not None:
            return await super().aresolve()
        # Building the whole is a pure function of the pieces, so it runs right here: a cancelled awaiter loses
        # nothing, and the first awaiter to finish publishes the one result everybody gets.
        await self._aall_pieces()
        if self._result is NO_VALUE and self._error is None:
            self._resolve_when_finished()
        if self._error is not None:
            raise self._error
        return cast(WHOLE, self._result)


class StreamAppender(Generic[PIECE]):
    """A push-style producer: `append()` pieces inside `with appender:`; a `StreamedPromise` streams them.

    With `capture_errors` an exception leaving the `with` block becomes the stream's last piece instead of
    propagating. Iterating an appender directly replays its pieces too.
    """

    __slots__ = ("_capture_errors", "_state", "_stream")

    _NEW, _OPEN, _CLOSED = 0, 1, 2

    def __init__(self, capture_errors: bool | Sentinel = NO_VALUE) -> None:
        if capture_errors is NO_VALUE:
            capture_errors = PromisingContext.get_current().appenders_capture_errors_by_default
        self._capture_errors = bool(capture_errors)
        self._state = self._NEW
        self._stream = PieceStream()

    @property
    def was_open(self) -> bool:
        """Whether `open()` was ever called."""
        return self._state != self._NEW

    @property
    def is_open(self) -> bool:
        """Whether pieces can be appended now."""
        return self._state == self._OPEN

    def open(self) -> Self:
        """Allow appending (the `with` block does this)."""
        if self._state == self._CLOSED:
            raise AppenderClosedError(f"This {type(self).__name__} is closed and cannot be reopened.")
        self._state = self._OPEN
        return self

    def _check_open(self) -> None:
        if self._state == self._NEW:
            raise AppenderNotOpenError(
                f"This {type(self).__name__} is not open: use `with appender:` (or `appender.open()`) first."
            )
        raise AppenderClosedError(f"This {type(self).__name__} is closed: nothing more can be appended to it.")

    def append(self, piece: PIECE) -> StreamAppender[PIECE]:
        """Add a piece; consumers waiting for one wake up at the next task switch."""
        if self._state != self._OPEN:
            self._check_open()
        self._stream.push(piece)
        return self

    def close(self, exc_value: BaseException | None = None) -> bool:
        """End the stream; returns True when `exc_value` was captured as the last piece (and so suppressed)."""
        if self._state == self._CLOSED:
            return False
        suppress = False
        if exc_value is not None and self._capture_errors and not isinstance(exc_value, AppenderClosedError):
            self._stream.push(exc_value)
            suppress = True
        self._state = self._CLOSED
        self._stream.finish()
        return suppress

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        exc_traceback: TracebackType | None,
    ) -> bool:
        return self.close(exc_value)

    async def __aenter__(self) -> None:
        name = type(self).__name__
        raise SyncContextManagerError(f"Use `with {name}()` instead of `async with {name}()`.")

    async def __aexit__(self, *exc_info: object) -> None:  # pragma: no cover - __aenter__ always raises
        return None

    def _ensure_producing(self) -> None:
        """Pieces are pushed by `append`; there is nothing to start."""

    def _new_waiter(self, end: bool = False) -> asyncio.Future[None]:
        """A future done at the next piece (with `end`: at the end); an appender is waited for on its own loop."""
        return self._stream.wait_end() if end else self._stream.wait()

    def __aiter__(self) -> AsyncIterator[PIECE]:
        return _ReplayIterator(self)

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncIterator[PIECE]:
        """Iterate (so an appender can serve as a promise's streamer)."""
        return _ReplayIterator(self)
