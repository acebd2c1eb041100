"""`FlatSequence`: merge an ordered and an out-of-order stream of items, flattening each item into outputs.

This is the generic form (any flattener). Message sequences use a specialised engine in `miniagents_nb.messages`
that appends ready messages synchronously; both follow the same ordering rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from miniagents_nb.errors import FunctionNotProvidedError
from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.sentinels import END_OF_QUEUE, END_OF_UNORDERED_QUEUE, NO_VALUE, Sentinel
from miniagents_nb.promising.streamed import PromiseStreamer, StreamedPromise

__all__ = ["FlatSequence", "SequenceFlattener"]

IN = TypeVar("IN")
OUT = TypeVar("OUT")

SequenceFlattener = Callable[[Any, Any], AsyncIterator[Any]]
"""`def flattener(flat_sequence, item) -> AsyncIterator[output]` (zero or more outputs per item)."""


class FlatSequence(Generic[IN, OUT]):
    """Turn a stream of items into a flat, replayable `sequence_promise` of outputs.

    Items of the normal stream are flattened one after the other (an item that is not ready holds back the ones
    after it); each item of the unordered stream is flattened in a task of its own and its outputs are emitted as
    soon as they exist. Exceptions raised while flattening become pieces at their position.
    """

    __slots__ = ("_flattener_fn", "_normal_streamer", "_unordered_streamer", "sequence_promise")

    sequence_promise: StreamedPromise[Any, Any]

    def __init__(
        self,
        normal_streamer: PromiseStreamer,
        *,
        unordered_streamer: PromiseStreamer | None = None,
        flattener: SequenceFlattener | None = None,
        start_soon: bool | Sentinel = NO_VALUE,
        sequence_promise_class: type[StreamedPromise[Any, Any]] = StreamedPromise,
    ) -> None:
        self._normal_streamer = normal_streamer
        self._unordered_streamer = unordered_streamer
        self._flattener_fn = flattener
        self.sequence_promise = sequence_promise_class(streamer=self._amerge, start_soon=start_soon)

    def _flattener(self, item: Any) -> AsyncIterator[OUT]:
        """Turn one item into outputs; override this or pass `flattener=`."""
        if self._flattener_fn is None:
            raise FunctionNotProvidedError(f"{type(self).__name__} has no flattener: pass `flattener=`.")
        return self._flattener_fn(self, item)

    async def _amerge(self, _promise: Any) -> AsyncIterator[OUT]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        ctx = PromisingContext.get_current()

        async def flatten_into_queue(item: Any) -> None:
            try:
                async for output in self._flattener(item):
                    queue.put_nowait(output)
            except Exception as error:
                queue.put_nowait(error)

        async def go_over_normal() -> None:
            try:
                async for item in self._normal_streamer(self.sequence_promise):
                    await flatten_into_queue(item)
            except Exception as error:
                queue.put_nowait(error)
            finally:
                queue.put_nowait(END_OF_QUEUE)

        async def go_over_unordered() -> None:
            tasks: list[asyncio.Task[None]] = []
            try:
                if self._unordered_streamer is not None:
                    async for item in self._unordered_streamer(self.sequence_promise):
                        tasks.append(ctx.start_soon(flatten_into_queue(item)))
            except Exception as error:
                queue.put_nowait(error)
            finally:
                await asyncio.gather(*tasks, return_exceptions=True)
                queue.put_nowait(END_OF_UNORDERED_QUEUE)

        ctx.start_soon(go_over_normal())
        ctx.start_soon(go_over_unordered())
        ends = 0
        while ends < 2:
            output = await queue.get()
            if output is END_OF_QUEUE or output is END_OF_UNORDERED_QUEUE:
                ends += 1
            else:
                # An exception object yielded as a piece is raised to consumers at this position, and the
                # sequence goes on after it (unlike a raised one, which would end the generator).
                yield output
