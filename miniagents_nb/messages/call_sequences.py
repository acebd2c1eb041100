"""The input and reply sequences of an agent call, built directly: every call makes one or two.

They are the objects `MessageSequence`'s constructors make (tests/test_flat_sequence.py compares every slot), set
up without the context lookups and the keyword plumbing through four constructors that cost a share of a call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from miniagents_nb.messages.context import MessagingContext
from miniagents_nb.messages.message import Message, _text_message
from miniagents_nb.messages.prefilled import prefilled_promise
from miniagents_nb.messages.sequence import MessageSequence, MessageSequencePromise, SafeMessageSequencePromise
from miniagents_nb.promising.piece_stream import FinishedPieceStream, PieceStream
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["closed_call_sequence", "open_call_sequence"]

_new_object = object.__new__


def open_call_sequence(
    ctx: MessagingContext,
    start_soon: bool | Sentinel,
    errors_as_messages: bool,
    on_start: Callable[[], None] | None = None,
) -> MessageSequence:
    """`MessageSequence(True, start_soon, errors_as_messages, on_start=on_start)` under `ctx`, opened: the
    object the constructors make (a test compares every slot), set up directly, since every agent call makes
    one or two (no context lookups, no keyword plumbing through four constructors)."""
    sequence = _new_object(MessageSequence)
    sequence._ctx = ctx
    sequence._flattener_fn = None
    sequence._on_start = on_start
    sequence._started = False
    sequence._input_closed = False
    sequence._backlog = None
    sequence._unordered_waiting = None
    sequence._walking = False
    sequence._unordered_running = 0
    sequence._copying_from = None
    sequence._out = out = PieceStream()
    sequence._errors_as_messages = errors_as_messages
    sequence._tracebacks_in_messages = ctx.error_tracebacks_in_messages
    sequence.on_message = None
    sequence._capture_errors = True
    sequence._state = MessageSequence._OPEN
    promise_class = SafeMessageSequencePromise if errors_as_messages else MessageSequencePromise
    promise = _new_object(promise_class)
    promise._ctx = ctx
    promise._resolver_fn = None
    promise._result = NO_VALUE
    promise._error = None
    promise._resolve_task = None
    promise._pump_task = None
    promise._streamer_fn = None
    promise._stream = out
    promise._sequence = sequence
    sequence.sequence_promise = promise
    if ctx.start_everything_soon_by_default if start_soon is NO_VALUE else start_soon:
        sequence.start()
    return sequence


def closed_call_sequence(ctx: MessagingContext, item: str | Message) -> MessageSequence:
    """The input of a call given one string or message: what `_open_for_call(ctx, False, False)`, appending
    `item` and closing make (a test compares every slot), built ended at once, its one piece in an immutable
    stream (most calls of a round trip get one message)."""
    sequence = _new_object(MessageSequence)
    sequence._ctx = ctx
    sequence._flattener_fn = None
    sequence._on_start = None
    sequence._started = False
    sequence._input_closed = True
    sequence._backlog = None
    sequence._unordered_waiting = None
    sequence._walking = False
    sequence._unordered_running = 0
    sequence._copying_from = None
    message = _text_message(item) if isinstance(item, str) else item
    sequence._out = out = cast(PieceStream, FinishedPieceStream((prefilled_promise(message, ctx),)))
    sequence._errors_as_messages = False
    sequence._tracebacks_in_messages = ctx.error_tracebacks_in_messages
    sequence.on_message = None
    sequence._capture_errors = True
    sequence._state = MessageSequence._CLOSED
    promise = _new_object(MessageSequencePromise)
    promise._ctx = ctx
    promise._resolver_fn = None
    promise._result = NO_VALUE
    promise._error = None
    promise._resolve_task = None
    promise._pump_task = None
    promise._streamer_fn = None
    promise._stream = out
    promise._sequence = None  # ended: nothing to start
    sequence.sequence_promise = promise
    if ctx.has_resolution_work():
        promise._on_stream_finished()
    return sequence
