"""`FlatSequence`: the one flattening engine. Items go in, in order or out of order; flat outputs come out.

Items appended in order are flattened one after the other: an item that is not ready holds back the ones after it.
Each item appended out of order is flattened on its own and its outputs go out as soon as they exist. The outputs
form one replayable stream, `sequence_promise`. Exceptions raised while flattening become pieces at their position,
and the sequence goes on after them.

What costs nothing is kept that way: an item that is ready (a subclass says which ones are, e.g. a string for
message sequences) is flattened synchronously, at the append, with no task. Only items that must be waited for are
walked by a task: one for the ordered lane, one per out-of-order item. Nothing is pulled from the items before the
sequence is started (at once with `start_soon`, otherwise when it is first consumed).

Two ways to use it: subclass it and override the flattening hooks (`_is_ready`, `_flatten_ready`, `_aflatten`;
`miniagents_nb.messages.MessageSequence` does), or give it upstream MiniAgents' streamers and an async flattener
(`FlatSequence(normal_streamer, unordered_streamer=..., flattener=...)`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from miniagents_nb.errors import FunctionNotProvidedError, SequenceCycleError
from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel
from miniagents_nb.promising.streamed import PieceStream, PromiseStreamer, StreamedPromise

__all__ = ["FlatSequence", "SequenceFlattener", "SequencePromise"]

IN = TypeVar("IN")
OUT = TypeVar("OUT")
PIECE = TypeVar("PIECE")
WHOLE = TypeVar("WHOLE")

SequenceFlattener = Callable[[Any, Any], AsyncIterator[Any]]
"""`def flattener(flat_sequence, item) -> AsyncIterator[output]` (zero or more outputs per item)."""


class SequencePromise(StreamedPromise[PIECE, WHOLE]):
    """The promise of a `FlatSequence`'s outputs: consuming it (or `start_soon`) starts the flattening."""

    __slots__ = ("_sequence",)

    def __init__(self, *, sequence: FlatSequence[Any, Any] | None = None, **kwargs: Any) -> None:
        self._sequence = sequence
        if sequence is not None:
            kwargs["streamer"] = sequence.output_stream
        super().__init__(**kwargs)

    def _start_soon(self) -> None:
        self._ensure_producing()

    def _ensure_producing(self) -> None:
        if self._sequence is not None:
            self._sequence.start()
        else:
            super()._ensure_producing()


class _Source:
    """An upstream-style streamer given to the constructor, walked as one item of the sequence."""

    __slots__ = ("streamer", "unordered")

    def __init__(self, streamer: PromiseStreamer, unordered: bool) -> None:
        self.streamer = streamer
        self.unordered = unordered


class FlatSequence(Generic[IN, OUT]):
    """Turn items into a flat, replayable `sequence_promise` of outputs (see the module docstring)."""

    __slots__ = (
        "_backlog",
        "_copying_from",
        "_ctx",
        "_flattener_fn",
        "_input_closed",
        "_on_start",
        "_out",
        "_started",
        "_unordered_running",
        "_unordered_waiting",
        "_walking",
        "sequence_promise",
    )

    sequence_promise: SequencePromise[Any, Any]

    def __init__(
        self,
        normal_streamer: PromiseStreamer | None = None,
        *,
        unordered_streamer: PromiseStreamer | None = None,
        flattener: SequenceFlattener | None = None,
        start_soon: bool | Sentinel = NO_VALUE,
        sequence_promise_class: type[SequencePromise[Any, Any]] = SequencePromise,
        on_start: Callable[[], None] | None = None,
        ctx: PromisingContext | None = None,
    ) -> None:
        self._ctx = PromisingContext.get_current() if ctx is None else ctx
        self._flattener_fn = flattener
        self._on_start = on_start
        self._started = False
        self._input_closed = False
        self._backlog: deque[Any] | None = None  # created on demand: most sequences never need one
        self._walking = False
        self._unordered_waiting: list[Any] | None = None
        self._unordered_running = 0
        self._copying_from: list[SequencePromise[Any, Any]] | None = None  # the unfinished sequences it copies now
        self._out = PieceStream()
        self.sequence_promise = sequence_promise_class(sequence=self, start_soon=start_soon)
        self._out.on_finish = None  # `_ended` tells the promise instead: no bound method held per sequence
        if normal_streamer is not None or unordered_streamer is not None:
            # The upstream form: the streamers are the whole input.
            if normal_streamer is not None:
                self.append_item(_Source(normal_streamer, unordered=False))
            if unordered_streamer is not None:
                self.append_item(_Source(unordered_streamer, unordered=True), out_of_order=True)
            self.close_input()

    @property
    def output_stream(self) -> PieceStream:
        """The buffer the outputs are pushed into (what `sequence_promise` streams)."""
        return self._out

    @property
    def is_started(self) -> bool:
        """Whether the flattening has started."""
        return self._started

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start flattening what waits (consuming `sequence_promise` does this)."""
        if self._started:
            return
        self._started = True
        if self._on_start is not None:
            on_start, self._on_start = self._on_start, None
            on_start()
        if self._backlog and not self._walking:
            self._start_walking()
        waiting, self._unordered_waiting = self._unordered_waiting, None
        for item in waiting or ():
            self._start_unordered(item)

    def close_input(self) -> None:
        """No more items: the sequence ends once what was appended is flattened."""
        self._input_closed = True
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        if (
            self._input_closed
            and not self._backlog
            and not self._unordered_running
            and not self._unordered_waiting
            and not self._walking
        ):
            self._out.finish()
            self._ended()

    def _ended(self) -> None:
        """The outputs ended. An ended sequence has nothing left to start: its promise lets go of it, so the two
        (which hold each other) need no garbage collector to be freed once nobody holds the sequence any more."""
        promise = self.sequence_promise
        promise._sequence = None
        promise._on_stream_finished()

    # --- appending -----------------------------------------------------------------------------------------------

    def append_item(self, item: Any, out_of_order: bool = False) -> None:
        """Add an item to flatten (as it is: checking or freezing items is the caller's business)."""
        if out_of_order:
            if self._is_ready(item):
                self._flatten_ready(item)
            elif self._started:
                self._start_unordered(item)
            elif self._unordered_waiting is None:
                self._unordered_waiting = [item]
            else:
                self._unordered_waiting.append(item)
        elif self._backlog:
            self._backlog.append(item)
        elif self._is_ready(item):
            self._flatten_ready(item)
        else:
            item = self._flatten_ready_prefix(item)
            if self._backlog is None:
                self._backlog = deque()
            self._backlog.append(item)
            if self._started:
                self._start_walking()

    def _start_walking(self) -> None:
        self._walking = True
        self._ctx.start_soon(self._awalk_ordered())

    def _start_unordered(self, item: Any) -> None:
        self._unordered_running += 1
        self._ctx.start_soon(self._aflatten_unordered(item))

    async def _awalk_ordered(self) -> None:
        backlog = self._backlog
        assert backlog is not None
        try:
            while backlog:
                await self._aflatten(backlog[0])
                backlog.popleft()
        except asyncio.CancelledError as error:
            backlog.clear()
            self._push_error(error)
            raise
        finally:
            self._walking = False
            self._finish_if_done()

    async def _aflatten_unordered(self, item: Any) -> None:
        try:
            await self._aflatten(item)
        except asyncio.CancelledError as error:
            self._push_error(error)
            raise
        finally:
            self._unordered_running -= 1
            self._finish_if_done()

    # --- the flattening hooks ------------------------------------------------------------------------------------

    def _is_ready(self, item: Any) -> bool:
        """Whether `item` can be flattened right now, synchronously (none can, by default)."""
        return False

    def _flatten_ready(self, item: Any) -> None:
        """Push the outputs of a ready item (only called for items `_is_ready` accepted)."""
        raise NotImplementedError(f"{type(self).__name__} accepted a ready item it cannot flatten: {item!r}")

    def _flatten_ready_prefix(self, item: Any) -> Any:
        """Flatten the part of a not-ready item that is ready now and return the rest (by default: all of it)."""
        return item

    # --- waiting on other sequences -----------------------------------------------------------------------------

    def _begin_copying(self, promise: SequencePromise[Any, Any]) -> None:
        """Note that this sequence now copies the unfinished `promise` (so it cannot end before that one does).

        Raises `SequenceCycleError` when `promise` cannot end before this sequence does either: it is this
        sequence, or it copies (through any chain of sequences) this one. Both would wait for ever; the caller puts
        the error at the item's position instead, and the sequences end.
        """
        if self._copies_itself_through(promise):
            raise SequenceCycleError(
                "A message sequence was given itself to flatten (directly, or through other sequences: e.g. agent A "
                "replies agent B's reply and B replies A's), so it could never end: reply another sequence, or the "
                "messages received so far, instead."
            )
        if self._copying_from is None:
            self._copying_from = [promise]
        else:
            self._copying_from.append(promise)

    def _end_copying(self, promise: SequencePromise[Any, Any]) -> None:
        """`promise` (given to `_begin_copying`) is copied to its end, or copying it stopped."""
        if self._copying_from is not None:
            self._copying_from.remove(promise)

    def _copies_itself_through(self, promise: SequencePromise[Any, Any]) -> bool:
        own = self.sequence_promise
        seen: set[int] = set()
        todo: list[Any] = [promise]
        while todo:
            candidate = todo.pop()
            if candidate is own:
                return True
            if id(candidate) in seen:
                continue
            seen.add(id(candidate))
            sequence = getattr(candidate, "_sequence", None)
            if isinstance(sequence, FlatSequence) and sequence._copying_from:
                todo.extend(sequence._copying_from)
        return False

    def _push_error(self, error: BaseException) -> None:
        """An exception met while flattening: a piece at its position."""
        self._out.push(error)

    async def _aflatten(self, item: Any) -> None:
        """Flatten an item that had to be waited for, pushing its outputs; exceptions become pieces."""
        if isinstance(item, _Source):
            await self._aflatten_source(item)
            return
        try:
            async for output in self._flattener(item):
                self._out.push(output)
        except Exception as error:
            self._push_error(error)

    def _flattener(self, item: Any) -> AsyncIterator[OUT]:
        """Turn one item into outputs; override this or pass `flattener=`."""
        if self._flattener_fn is None:
            raise FunctionNotProvidedError(f"{type(self).__name__} has no flattener: pass `flattener=`.")
        return self._flattener_fn(self, item)

    async def _aflatten_source(self, source: _Source) -> None:
        try:
            async for item in source.streamer(self.sequence_promise):
                if source.unordered:
                    self._start_unordered(item)
                else:
                    await self._aflatten(item)
        except Exception as error:
            self._push_error(error)
