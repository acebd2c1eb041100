"""The outgoing side of a worker's stream: events batched until `batch_seconds` pass or `batch_tokens` tokens wait,
and how a message goes out (whole, or its tokens as they come).

See `miniagents_nb.ext.ray.worker` for the events. Messages a nested call replied, and errors, get ids here, so the
caller rebuilds each of them once: a message the remote agent forwards is the same promise on both sides of the
call tree, and an error reported by two calls is one error (logged once).
"""

from __future__ import annotations

import asyncio
from typing import Any

from miniagents_nb.ext.ray.wire import class_path, encode_error, encode_value
from miniagents_nb.messages import Message, MessagePromise
from miniagents_nb.promising import StreamCursor

__all__ = ["Outbox", "stream_start", "stream_tokens", "whole_message"]


class Outbox:
    """Events waiting to be sent, and when to send them (at once when `batch_tokens` tokens are waiting, or for an
    event that says when something happened); also the ids of the messages and errors sent so far."""

    __slots__ = ("_errors", "_messages", "batch_tokens", "events", "full", "head", "more", "tokens")

    def __init__(self, batch_tokens: int) -> None:
        self.head: tuple[Any, ...] | None = None
        """An event sent at once in a batch of its own (the remote call's start: the tokens after it still wait)."""
        self.events: list[tuple[Any, ...]] = []
        self.tokens = 0
        self.batch_tokens = batch_tokens
        self.more = asyncio.Event()
        self.full = asyncio.Event()
        self._messages: dict[int, tuple[MessagePromise, int]] = {}  # id(promise) -> (promise, message id)
        self._errors: dict[int, BaseException] = {}  # held, so that an id is never reused during the call

    def put(self, event: tuple[Any, ...]) -> None:
        self.events.append(event)
        self.more.set()

    def put_now(self, event: tuple[Any, ...]) -> None:
        """Put an event that is sent at once (its timing matters: a nested call was made or ended)."""
        self.put(event)
        self.full.set()

    def put_head(self, event: tuple[Any, ...]) -> None:
        """Put the event that goes out before any other, alone (see `head`)."""
        self.head = event
        self.more.set()

    def take_head(self) -> list[tuple[Any, ...]]:
        """The batch of the head event (taken: `head` is None again)."""
        assert self.head is not None
        batch, self.head = [self.head], None
        if not self.events:
            self.more.clear()
        return batch

    def remember(self, promise: MessagePromise) -> int:
        """A new id for a message sent by a nested call (the remote agent may forward it: `("R", id)`)."""
        message_id = len(self._messages) + 1
        self._messages[id(promise)] = (promise, message_id)
        return message_id

    def message_id(self, promise: MessagePromise) -> int | None:
        known = self._messages.get(id(promise))
        return known[1] if known is not None and known[0] is promise else None

    def error(self, error: BaseException) -> dict[str, Any]:
        """The encoded error, with an id: the caller rebuilds one error however many times it is reported."""
        self._errors[id(error)] = error
        return {**encode_error(error), "id": id(error)}

    def put_tokens(self, tokens: list[Any], message_id: int | None = None) -> None:
        encoded = [token if type(token) is str else encode_value(token) for token in tokens]
        last = self.events[-1] if self.events else None
        if message_id is None:
            if last is not None and last[0] == "t":
                last[1].extend(encoded)
            else:
                self.events.append(("t", encoded))
        elif last is not None and last[0] == "pt" and last[1] == message_id:
            last[2].extend(encoded)
        else:
            self.events.append(("pt", message_id, encoded))
        self.tokens += len(encoded)
        self.more.set()
        if self.tokens >= self.batch_tokens:
            self.full.set()

    def drain(self) -> list[tuple[Any, ...]]:
        events, self.events, self.tokens = self.events, [], 0
        self.more.clear()
        self.full.clear()
        return events


def whole_message(promise: MessagePromise) -> Message | None:
    """The message of a promise that was whole from the start (nothing to stream), else None."""
    cursor: StreamCursor[Any, Message] = StreamCursor(promise)
    if cursor.producer_ended:
        message, _error = cursor.result()
        pieces = cursor.peek()
        if message is not None and len(pieces) == 1 and pieces[0] is message:
            return message
    return None


def stream_start(promise: MessagePromise) -> tuple[str, Any]:
    """The class path and the encoded fields known beforehand of a message about to stream."""
    return class_path(promise.message_class), encode_value(promise.known_beforehand.as_kwargs())


async def stream_tokens(promise: MessagePromise, outbox: Outbox, message_id: int | None = None) -> None:
    """Send a message's tokens as they come, then its end (`e` / `x`, or `pe` / `px` for a nested call's)."""
    cursor: StreamCursor[Any, Message] = StreamCursor(promise)
    while True:
        pieces = cursor.take()
        if pieces:
            tokens = [piece for piece in pieces if not isinstance(piece, BaseException)]
            if tokens:
                outbox.put_tokens(tokens, message_id)
        waiter = cursor.waiter()
        if waiter is None:
            break
        await waiter
    message, error = cursor.result()
    tag = () if message_id is None else (message_id,)
    if error is not None:
        outbox.put(("x" if message_id is None else "px", *tag, outbox.error(error)))
    else:
        assert message is not None
        fields = {name: value for name, value in message.as_kwargs().items() if name not in ("content",)}
        outbox.put(("e" if message_id is None else "pe", *tag, encode_value(fields)))
