"""The calls a remote agent makes inside its worker, reported to the caller so that its call tree shows them.

`CallReporter` is an observer (the public observation API, `MiniAgents.subscribe`) of the worker's context for one
remote call: every call made there other than the remote call itself is a call *under* it (an agent it triggered,
running in the same worker, or the proxy of a `ray_agent` it called, with that one's own run under it). It sends
when each is made (alias, description, frozen arguments, interaction metadata, the call's own arguments, its
parent) and ends (how, and the error), and the messages it replies, whole or token by token (see
`miniagents_nb.ext.ray.worker` for the events). The caller mirrors them into local calls under `<ALIAS>@ray`.

A call's input is not reported (only the remote call's own input crossed the wire); an argument that cannot cross
(not JSON data, a message or a frozen model) is reported as its `repr`.
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
)
from miniagents_nb.ext.ray.errors import WireFormatError
from miniagents_nb.ext.ray.outbox import Outbox, stream_start, stream_tokens, whole_message
from miniagents_nb.ext.ray.wire import encode_value
from miniagents_nb.messages import MessagePromise

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

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.root_id: int | None = None
        self.running: set[int] = set()
        self.streams: set[asyncio.Future[None]] = set()
        self.settled = asyncio.Event()
        """Set while no reported call runs and no reported message streams (the stream may end)."""
        self.settled.set()

    def __call__(self, event: MiniAgentsEvent) -> None:
        call_id = event.call_id
        if self.root_id is None:  # the first call of the context is the remote call itself
            self.root_id = call_id
        if call_id == self.root_id:
            return
        outbox = self.outbox
        kind = type(event)
        if kind is AgentCallQueued:
            parent = event.call.parent
            parent_id = 0 if parent is None or parent.call_id == self.root_id else parent.call_id
            agent = event.agent
            outbox.put_now(
                (
                    "q",
                    call_id,
                    parent_id,
                    agent.alias,
                    agent.description,
                    encode_kwargs(agent.frozen_kwargs),
                    encode_kwargs(agent.interaction_metadata.as_kwargs()),
                    encode_kwargs(event.call.kwargs),
                )
            )
        elif kind is AgentCallStarted:
            self.running.add(call_id)
            self.settled.clear()
        elif kind is MessageReplied:
            assert isinstance(event, MessageReplied)
            self._replied(call_id, event.message_promise)
        elif kind is AgentCallFinished or kind is AgentCallCancelled or kind is AgentCallFailed:
            if isinstance(event, AgentCallFailed):
                outbox.put_now(("f", call_id, "F", outbox.error(event.error)))
            else:
                outbox.put_now(("f", call_id, "D" if kind is AgentCallFinished else "C", None))
            self.running.discard(call_id)
            self._check_settled()

    def _replied(self, call_id: int, promise: MessagePromise) -> None:
        outbox = self.outbox
        message = whole_message(promise)
        if message is not None:
            encoded = encode_value(message)
            outbox.put(("r", call_id, outbox.remember(promise), encoded))
            return
        start = stream_start(promise)
        message_id = outbox.remember(promise)
        outbox.put(("p", call_id, message_id, *start))
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
