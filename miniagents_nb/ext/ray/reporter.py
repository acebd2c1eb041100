"""The calls a remote agent makes inside its worker, reported to the caller so that its call tree shows them.

`CallReporter` is an observer (the public observation API, `MiniAgents.subscribe`) of the worker's context for one
remote call: every call made there other than the remote call itself is a call *under* it (an agent it triggered,
running in the same worker, or the proxy of a `ray_agent` it called, with that one's own run under it). It reports
each one when it starts (alias, description, frozen arguments, interaction metadata, the call's own arguments, its
parent, and when it was made and started), each message it replies, whole or token by token, and how it ended,
when, and with what input (see `miniagents_nb.ext.ray.worker` for the events). Every moment is the worker's, in
epoch seconds. The caller mirrors the calls into local calls under `<ALIAS>@ray`, at those moments. The remote call
itself is reported only when it starts (`s`, with this worker's node, process and actor): a call that waited for
the worker's loop (busy with another call's CPU-bound agent) starts in the views when it really did.

A call is reported when it starts, not when it is made: the mirror starts as soon as it is made, and the moment it
started must be known by then (a call ended without starting is reported at its end). Its input is reported at its
end, when it is complete: a message a reported call replied goes as its id (the caller has it), any other whole.
An argument that cannot cross (not JSON data, a message or a frozen model) is reported as its `repr`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from miniagents_nb.events import (
    AgentCallCancelled,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    MessageReplied,
    MiniAgentsEvent,
    ObservedCall,
    wall_clock,
)
from miniagents_nb.ext.ray.errors import WireFormatError
from miniagents_nb.ext.ray.outbox import Outbox, stream_start, stream_tokens, whole_message
from miniagents_nb.ext.ray.wire import encode_value
from miniagents_nb.messages import Message, MessagePromise

__all__ = ["CallReporter", "encode_kwargs"]


def encode_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments for the wire; one that cannot cross is shown by its `repr` (the mirror is for reading only)."""
    encoded = {}
    for name, value in kwargs.items():
        try:
            encoded[name] = encode_value(value)
        except WireFormatError:
            encoded[name] = repr(value)
    return encoded


class CallReporter:
    """Observes one remote call's worker context and puts the events of the calls under it into the outbox."""

    def __init__(self, outbox: Outbox, where: tuple[str, int, str]) -> None:
        self.outbox = outbox
        self.where = where
        """The node id, process id and actor id of this worker (reported when the remote call starts)."""
        self.root_id: int | None = None
        self.running: set[int] = set()
        self.made: dict[int, tuple[Any, ...]] = {}
        """The reports of calls made and not started yet (sent when they start, with that moment)."""
        self.streams: set[asyncio.Future[None]] = set()
        self.settled = asyncio.Event()
        """Set while no reported call runs and no reported message streams (the stream may end)."""
        self.settled.set()

    def __call__(self, event: MiniAgentsEvent) -> None:
        call_id = event.call_id
        if self.root_id is None:  # the first call of the context is the remote call itself
            self.root_id = call_id
        if call_id == self.root_id:
            if type(event) is AgentCallStarted:
                self.outbox.put_head(("s", *self.where, wall_clock(event.at)))
            return
        outbox = self.outbox
        kind = type(event)
        if kind is AgentCallQueued:
            self.made[call_id] = self._made(event.call, wall_clock(event.at))
        elif kind is AgentCallStarted:
            outbox.put_now((*self.made.pop(call_id), wall_clock(event.at)))
            self.running.add(call_id)
            self.settled.clear()
        elif kind is MessageReplied:
            assert isinstance(event, MessageReplied)
            self._replied(call_id, event.message_promise, wall_clock(event.at))
        elif kind is AgentCallFinished or kind is AgentCallCancelled or kind is AgentCallFailed:
            made = self.made.pop(call_id, None)
            if made is not None:  # it never started
                outbox.put_now((*made, None))
            if isinstance(event, AgentCallFailed):
                how, error = "F", outbox.error(event.error)
            else:
                how, error = "D" if kind is AgentCallFinished else "C", None
            outbox.put_now(("f", call_id, how, error, wall_clock(event.at), self._inputs(event.call)))
            self.running.discard(call_id)
            self._check_settled()

    def _made(self, call: ObservedCall, at: float) -> tuple[Any, ...]:
        parent = call.parent
        parent_id = 0 if parent is None or parent.call_id == self.root_id else parent.call_id
        agent = call.agent
        return (
            "q",
            call.call_id,
            parent_id,
            agent.alias,
            agent.description,
            encode_kwargs(agent.frozen_kwargs),
            encode_kwargs(agent.interaction_metadata.as_kwargs()),
            encode_kwargs(call.kwargs),
            at,
        )

    def _inputs(self, call: ObservedCall) -> list[Any]:
        """The call's input as far as it came: ids of messages already sent, the others encoded (an error, or a
        message not resolved by the call's end, is left out: the mirror is for reading)."""
        entries: list[Any] = []
        for piece in call.input_sequence_promise.pieces_so_far:
            if isinstance(piece, BaseException):
                continue
            promise = piece.original_promise
            message_id = self.outbox.message_id(piece)
            if message_id is None:
                message_id = self.outbox.message_id(promise)
            if message_id is not None:
                entries.append(message_id)
                continue
            known = promise.known_beforehand
            if not isinstance(known, Message):
                if not promise.producer_ended:
                    continue
                try:
                    known = promise.result_now()
                except Exception:
                    continue
            try:
                entries.append(encode_value(known))
            except WireFormatError:
                continue
        return entries

    def _replied(self, call_id: int, promise: MessagePromise, at: float) -> None:
        outbox = self.outbox
        message = whole_message(promise)
        if message is not None:
            encoded = encode_value(message)
            outbox.put(("r", call_id, outbox.remember(promise), encoded, at))
            return
        start = stream_start(promise)
        message_id = outbox.remember(promise)
        outbox.put(("p", call_id, message_id, *start, at))
        stream = asyncio.ensure_future(stream_tokens(promise, outbox, message_id))
        self.streams.add(stream)
        self.settled.clear()
        stream.add_done_callback(self._stream_ended)

    def _stream_ended(self, stream: asyncio.Future[None]) -> None:
        self.streams.discard(stream)
        if not stream.cancelled():
            stream.exception()  # retrieved: a failure to encode is the caller's `RayWorkerDiedError`, not a log
        self._check_settled()

    def _check_settled(self) -> None:
        if not self.running and not self.streams:
            self.settled.set()

    def close(self) -> None:
        """Stop following the messages still streaming (the remote call is over or cancelled)."""
        for stream in list(self.streams):
            stream.cancel()
