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
    """`MessageSequence(True, start_soon, errors_as_messages, on_start=on_start)` under `ctx`, opened."""
    sequence = _built(ctx, PieceStream(), errors_as_messages, on_start, ended=False)
    if ctx.start_everything_soon_by_default if start_soon is NO_VALUE else start_soon:
        sequence.start()
    return sequence


def closed_call_sequence(ctx: MessagingContext, item: str | Message) -> MessageSequence:
    """The input of a call given one string or message: what `open_call_sequence(ctx, False, False)`, appending
    `item` and closing make, built ended at once, its one piece in an immutable stream (a round trip's input)."""
    message = _text_message(item) if isinstance(item, str) else item
    out = cast(PieceStream, FinishedPieceStream((prefilled_promise(message, ctx),)))
    sequence = _built(ctx, out, False, None, ended=True)
    if ctx.has_resolution_work():
        sequence.sequence_promise._on_stream_finished()
    return sequence


def _built(
    ctx: MessagingContext,
    out: PieceStream,
    errors_as_messages: bool,
    on_start: Callable[[], None] | None,
    *,
    ended: bool,
) -> MessageSequence:
    """A sequence with its promise, every slot set (`ended`: closed, and let go by its promise, as `_ended` does)."""
    sequence = _new_object(MessageSequence)
    sequence._ctx = ctx
    sequence._flattener_fn = None
    sequence._on_start = on_start
    sequence._started = False
    sequence._input_closed = ended
    sequence._backlog = None
    sequence._unordered_waiting = None
    sequence._walking = False
    sequence._unordered_running = 0
    sequence._copying_from = None
    sequence._out = out
    sequence._errors_as_messages = errors_as_messages
    sequence._tracebacks_in_messages = ctx.error_tracebacks_in_messages
    sequence.on_message = None
    sequence._capture_errors = True
    sequence._final_cancellation = None
    sequence._state = MessageSequence._CLOSED if ended else MessageSequence._OPEN
    promise = _new_object(SafeMessageSequencePromise if errors_as_messages else MessageSequencePromise)
    promise._ctx = ctx
    promise._resolver_fn = None
    promise._result = NO_VALUE
    promise._error = None
    promise._resolve_task = None
    promise._pump_task = None
    promise._streamer_fn = None
    promise._stream = out
    promise._sequence = None if ended else sequence
    sequence.sequence_promise = promise
    return sequence
