"""Message sequences: whatever an agent replies, flattened in the background into one stream of message promises.

`MessageSequence` is `FlatSequence` (the one flattening engine) with message rules: strings, messages, message
promises, exceptions and finished sequences are ready (flattened at the append, with no task); other sequences and
async iterables are walked. Under `errors_as_messages` a failure reaches consumers as an `ErrorMessage`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

from miniagents_nb.compat import SeedEraSequenceMethods
from miniagents_nb.errors import MessageTypeError, NotAwaitedError, SequenceCycleError
from miniagents_nb.messages.appender import MessageSequenceAppender
from miniagents_nb.messages.context import MessagingContext
from miniagents_nb.messages.freezing import freeze_message_item
from miniagents_nb.messages.hints import sequence_promise_repr, sequence_promise_use_error
from miniagents_nb.messages.joining import joined_text_promise
from miniagents_nb.messages.message import (
    ErrorMessage,
    Message,
    MessagePromise,
    TextMessage,
    _ErrorsAsMessagePromise,
    _text_message,
    error_to_text,
)
from miniagents_nb.messages.prefilled import prefilled_promise
from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel
from miniagents_nb.promising.sequence import FlatSequence, SequencePromise

__all__ = [
    "MessageSequence",
    "MessageSequencePromise",
    "SafeMessageSequencePromise",
]


class MessageSequencePromise(SequencePromise[MessagePromise, tuple[Message, ...]], SeedEraSequenceMethods):
    """A replayable stream of message promises; awaiting it gives the tuple of messages.

    Indexing it, taking its length or printing it (what one does with the messages, forgetting the `await`) says
    so and shows how to get them (`miniagents_nb.messages.hints`). It stays truthy, and it is still no iterable
    (`for` and the flattening rules see an async iterable only).
    """

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:
        __tracebackhide__ = True  # IPython and pytest show the user's line, not this one
        # (a plain `for` and `list()` come here too: they fall back to indexing)
        raise NotAwaitedError(
            sequence_promise_use_error(self, "Cannot index (`reply[0]`) or loop with a plain `for` over")
        )

    def __len__(self) -> int:
        __tracebackhide__ = True
        raise NotAwaitedError(sequence_promise_use_error(self, "Cannot take the `len()` of"))

    def __bool__(self) -> bool:
        return True  # `if reply:` must not ask for a length that is not known yet

    def __repr__(self) -> str:
        return sequence_promise_repr(self)

    __str__ = __repr__

    def _on_stream_finished(self) -> None:
        # Listeners (persistence, views) hear of the whole as soon as it exists; the messages may still stream, so
        # the tuple is awaited in a task rather than built here.
        if self._ctx.has_resolution_work() and self._resolve_task is None and not self.is_resolved:
            self._resolve_task = self._ctx.start_soon(self._aresolve_once())

    def _resolve_when_finished(self) -> None:
        """Build the tuple synchronously, only when every message is known already (otherwise leave it)."""
        messages = []
        for piece in self._stream.pieces:
            if isinstance(piece, BaseException):
                self._set_error(piece)
                return
            if not piece.producer_ended:
                return
            try:
                messages.append(piece.result_now())
            except BaseException as error:
                self._set_error(error)
                return
        self._set_result(tuple(messages))

    async def _aresolver(self) -> tuple[Message, ...]:
        pieces = await self._aall_pieces()
        for piece in pieces:
            if isinstance(piece, BaseException):
                raise piece
        return tuple([await message_promise for message_promise in pieces])

    async def aresolve(self) -> tuple[Message, ...]:
        """Wait for every message of the sequence; the same tuple every time.

        Like a message's, the whole is a pure function of the pieces (awaiting message promises only reads their
        cached results), so it is computed right in the awaiting task: no extra task, no shield. A cancelled awaiter
        loses nothing and caches nothing; the first awaiter to finish publishes the tuple everybody gets.
        """
        __tracebackhide__ = True  # a failure re-raised here is the agent's: IPython shows its frames, not these
        if self._result is NO_VALUE and self._error is None:
            stream = self._stream
            while not stream.finished:  # `_aall_pieces()`, inlined: one coroutine less per awaited reply
                await self._new_waiter()
                stream = self._stream
            pieces = stream.pieces
            try:
                messages = []
                for piece in pieces:
                    if isinstance(piece, BaseException):
                        raise piece
                    message = piece._result  # most are known already (a replied string's): no coroutine to await
                    messages.append(await piece if message is NO_VALUE else message)
            except asyncio.CancelledError:
                raise  # maybe this awaiter being cancelled: nothing to cache
            except BaseException as error:
                if self._result is NO_VALUE and self._error is None:
                    if not self._publishes_here():
                        raise
                    self._set_error(error)
            else:
                if self._result is NO_VALUE and self._error is None:
                    if not self._publishes_here():
                        return tuple(messages)
                    self._set_result(tuple(messages))
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]

    def __await__(self) -> Generator[Any, None, tuple[Message, ...]]:
        return self.aresolve().__await__()  # a reply is rarely known when awaited: no shortcut to try first

    def _publishes_here(self) -> bool:
        """Whether this awaiter may publish the whole: not from another thread's loop while listeners (persistence,
        views) would be notified, since their tasks belong to the sequence's own loop (which resolves it itself)."""
        return not self._ctx.has_resolution_work() or self._ctx.foreign_home_loop(asyncio.get_running_loop()) is None

    def as_single_text_promise(self, **kwargs: Any) -> MessagePromise:
        """One text message promise joining every message of the sequence (lazy: starts when consumed)."""
        kwargs["start_soon"] = False
        return joined_text_promise(self, **kwargs)


class SafeMessageSequencePromise(MessageSequencePromise):
    """A sequence promise whose failures arrive as `ErrorMessage`s (`errors_as_messages`)."""

    __slots__ = ()


class MessageSequence(FlatSequence[Any, MessagePromise], MessageSequenceAppender):
    """Flattens whatever is appended into one sequence of message promises (see the module docstring).

    It is its own `message_appender` (see `MessageSequenceAppender`).
    """

    __slots__ = (
        "_capture_errors",
        "_errors_as_messages",
        "_final_cancellation",
        "_state",
        "_tracebacks_in_messages",
        "on_message",
    )

    sequence_promise: MessageSequencePromise

    def __init__(
        self,
        appender_capture_errors: bool | Sentinel = NO_VALUE,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        *,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        ctx = PromisingContext.get_current()
        messaging = ctx if isinstance(ctx, MessagingContext) else None
        if errors_as_messages is NO_VALUE:
            errors_as_messages = messaging is not None and messaging.errors_as_messages
        super().__init__(
            start_soon=start_soon,
            on_start=on_start,
            sequence_promise_class=SafeMessageSequencePromise if errors_as_messages else MessageSequencePromise,
            ctx=ctx,
        )
        if appender_capture_errors is NO_VALUE:
            appender_capture_errors = ctx.appenders_capture_errors_by_default
        self._errors_as_messages = bool(errors_as_messages)
        self._tracebacks_in_messages = messaging is not None and messaging.error_tracebacks_in_messages
        self.on_message: Callable[[MessagePromise], None] | None = None
        """Called with every message promise that originates in this sequence (set by observed agent calls)."""
        self._capture_errors = bool(appender_capture_errors)
        self._final_cancellation: BaseException | None = None
        self._state = self._NEW

    @property
    def message_appender(self) -> MessageSequenceAppender:
        """Where items are appended: the sequence itself."""
        return self

    def append(self, piece: Any, out_of_order: bool = False) -> MessageSequence:
        """Append messages (any nesting; see `MessageSequenceAppender.append`)."""
        if self._state == self._OPEN and (type(piece) is str or isinstance(piece, Message)):
            self._append_frozen(piece, out_of_order)  # nothing to freeze
            return self
        return super().append(piece, out_of_order)

    def close(self, exc_value: BaseException | None = None) -> bool:
        """Close the sequence (see `MessageSequenceAppender.close`). A cancellation that closes it ends it once: when
        the last piece before it is a cancellation already (a nested reply cancelled with the call, e.g. by the call
        itself as it was being cancelled), that one is the end."""
        if isinstance(exc_value, asyncio.CancelledError):
            self._final_cancellation = exc_value
        return super().close(exc_value)

    def _append_frozen(self, item: Any, out_of_order: bool = False) -> None:
        """`append_item`, with what most items are (a string, a message) flattened right here, a few calls shorter."""
        if out_of_order or not self._backlog:
            if type(item) is str:
                message: Message = _text_message(item)
            elif isinstance(item, Message):
                message = item
            else:
                self.append_item(item, out_of_order)
                return
            promise = prefilled_promise(message, self._ctx)
            if self.on_message is not None:
                self.on_message(promise)
            self._out.push(promise)  # a known message: no errors-as-messages view needed
            return
        self.append_item(item, out_of_order)

    def _ended(self) -> None:
        super()._ended()
        self.on_message = None  # no message can originate here any more; the observer (a call) may go

    @classmethod
    def turn_into_sequence_promise(cls, messages: Any) -> MessageSequencePromise:
        """`messages` as a sequence promise (returned unchanged if it is one already)."""
        if isinstance(messages, MessageSequencePromise):
            return messages
        sequence = cls(appender_capture_errors=True, start_soon=False)
        with sequence.message_appender:
            sequence.message_appender.append(messages)
        return sequence.sequence_promise

    # --- the flattening hooks ------------------------------------------------------------------------------------

    def _is_ready(self, item: Any) -> bool:
        if type(item) is str or isinstance(item, (Message, MessagePromise, BaseException)):
            return True
        if isinstance(item, tuple):
            return all(self._is_ready(element) for element in item)
        if isinstance(item, MessageSequencePromise):
            return item.producer_ended
        return False

    def _flatten_ready_prefix(self, item: Any) -> Any:
        if isinstance(item, tuple):  # what is ready at the front goes out now; the walker takes the rest
            ready = 0
            while self._is_ready(item[ready]):
                ready += 1
            for element in item[:ready]:
                self._flatten_ready(element)
            return item[ready:]
        return item

    def _push_error(self, error: BaseException) -> None:
        if error is self._final_cancellation:
            pieces = self._out.pieces
            if pieces and isinstance(pieces[-1], asyncio.CancelledError):
                return
        if self._errors_as_messages and isinstance(error, Exception):
            text = error_to_text(error, self._tracebacks_in_messages)
            self._out.push(MessagePromise(prefill_message=ErrorMessage(content=text)))
        else:
            self._out.push(error)

    def _push_message_promise(self, promise: MessagePromise) -> None:
        if self._errors_as_messages and not (promise.producer_ended and promise.error_now() is None):
            if not isinstance(promise, _ErrorsAsMessagePromise):
                promise = _ErrorsAsMessagePromise(promise, self._tracebacks_in_messages)
        self._out.push(promise)

    def _push_reply(self, promise: MessagePromise) -> None:
        """A message that originates here (not copied from a nested sequence): observers hear of it."""
        if self.on_message is not None:
            self.on_message(promise)
        self._push_message_promise(promise)

    def _flatten_ready(self, item: Any) -> None:
        if type(item) is str:
            self._push_reply(prefilled_promise(_text_message(item), self._ctx))
        elif isinstance(item, MessagePromise):
            self._push_reply(item)
        elif isinstance(item, Message):
            self._push_reply(prefilled_promise(item, self._ctx))
        elif isinstance(item, tuple):
            for element in item:
                self._flatten_ready(element)
        elif isinstance(item, BaseException):
            self._push_error(item)
        elif isinstance(item, str):
            self._push_reply(MessagePromise(prefill_message=TextMessage(str(item))))
        elif isinstance(item, MessageSequencePromise):
            self._copy_pieces(item.pieces_so_far, 0)

    def _copy_pieces(self, pieces: list[Any], start: int) -> None:
        if not self._errors_as_messages:
            if start < len(pieces):
                self._out.extend(pieces[start:])
            return
        for piece in pieces[start:]:
            if isinstance(piece, MessagePromise):
                self._push_message_promise(piece)
            else:
                self._push_error(piece)

    async def _aflatten(self, item: Any) -> None:
        """Flatten an item that had to be waited for, depth first over an explicit stack of iterators.

        Nesting (async generators yielding async generators, tuples of them, ...) costs no recursion, so a reply
        nested any number of levels deep is flattened to its end like a flat one.
        """
        stack: list[Any] = []  # tuple iterators and async iterators, the innermost last
        while True:
            if item is not _NOTHING:
                if self._is_ready(item):
                    self._flatten_ready(item)
                elif isinstance(item, tuple):
                    stack.append(iter(item))
                elif isinstance(item, MessageSequencePromise):
                    await self._acopy_sequence(item)
                else:
                    try:
                        stack.append(item.__aiter__())
                    except Exception as error:
                        self._push_error(error)
            if not stack:
                return
            item = await self._anext_item(stack)

    async def _anext_item(self, stack: list[Any]) -> Any:
        """The next (frozen) item of the innermost iterator, or `_NOTHING` (when it ended, or gave an error)."""
        top = stack[-1]
        if type(top) is _TUPLE_ITERATOR:
            element = next(top, _NOTHING)
            if element is _NOTHING:
                stack.pop()
            return element
        try:
            element = await top.__anext__()
        except StopAsyncIteration:
            stack.pop()
            return _NOTHING
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # the iterable ends there; the error takes its place
            stack.pop()
            self._push_error(error)
            return _NOTHING
        try:
            return freeze_message_item(element)
        except MessageTypeError as error:
            self._push_error(error)
            return _NOTHING

    async def _acopy_sequence(self, promise: MessageSequencePromise) -> None:
        """Copy the pieces of an unfinished sequence as they come (unless that would wait for this sequence)."""
        try:
            self._begin_copying(promise)
        except SequenceCycleError as error:
            self._push_error(error)
            return
        try:
            copied = 0
            while True:
                pieces = promise.pieces_so_far
                self._copy_pieces(pieces, copied)
                copied = len(pieces)
                if promise.producer_ended:
                    break
                await promise.wait_for_more()
        finally:
            self._end_copying(promise)


_new_object = object.__new__
_NOTHING: Any = object()
"""No item: the innermost iterator ended (or failed), go on with the one around it."""
_TUPLE_ITERATOR = type(iter(()))
