"""The Ray actor that runs agents: one `MiniAgents` context per call, its replies streamed back in batches.

`AgentWorker.run` is an async generator that Ray turns into a streaming generator (`num_returns="streaming"`): each
item is one *batch* of events, collected for `batch_seconds` or until `batch_tokens` tokens are waiting, so a fast
token stream costs one Ray object per batch, not per token. The events, in reply order:

- `("s", node_id, pid, actor_id)`: the call started on this worker (always a batch of its own, sent at once);
- `("w", message)`: a whole message (already resolved when its turn came);
- `("m", class_path, known_beforehand)`: a message starts streaming; `("t", [token, ...])`: its tokens;
  `("e", fields)`: it ended (its fields other than the text); `("x", error)`: it failed mid-stream;
- `("X", error)`: a failure at this position of the reply sequence (a nested reply failed; the agent went on);
- `("F", error)`: the agent itself failed (the sequence ends here); `("C",)`: it was cancelled; `("D",)`: done.

Messages and errors are encoded with `miniagents_nb.ext.ray.wire`. This module never imports `ray`: the class is
turned into an actor class by `miniagents_nb.ext.ray.pool`, and Ray imports it in the worker by its path.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from miniagents_nb.agents import AgentCallStatus, MiniAgent, MiniAgents
from miniagents_nb.ext.ray.wire import class_path, decode_value, encode_error, encode_value, resolve_agent
from miniagents_nb.messages import Message, MessagePromise
from miniagents_nb.promising import StreamCursor

__all__ = ["AgentWorker"]


class _Outbox:
    """Events waiting to be sent, and when to send them (at once when `batch_tokens` tokens are waiting)."""

    __slots__ = ("events", "full", "more", "tokens", "batch_tokens")

    def __init__(self, batch_tokens: int) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.tokens = 0
        self.batch_tokens = batch_tokens
        self.more = asyncio.Event()
        self.full = asyncio.Event()

    def put(self, event: tuple[Any, ...]) -> None:
        self.events.append(event)
        self.more.set()

    def put_tokens(self, tokens: list[Any]) -> None:
        encoded = [token if type(token) is str else encode_value(token) for token in tokens]
        last = self.events[-1] if self.events else None
        if last is not None and last[0] == "t":
            last[1].extend(encoded)
        else:
            self.events.append(("t", encoded))
        self.tokens += len(encoded)
        self.more.set()
        if self.tokens >= self.batch_tokens:
            self.full.set()

    def drain(self) -> list[tuple[Any, ...]]:
        events, self.events, self.tokens = self.events, [], 0
        self.more.clear()
        self.full.clear()
        return events


async def _stream_message(promise: MessagePromise, outbox: _Outbox) -> None:
    cursor: StreamCursor[Any, Message] = StreamCursor(promise)
    if cursor.producer_ended:
        message, error = cursor.result()
        pieces = cursor.peek()
        if message is not None and len(pieces) == 1 and pieces[0] is message:  # a whole message, not streamed
            outbox.put(("w", encode_value(message)))
            return
    outbox.put(("m", class_path(promise.message_class), encode_value(promise.known_beforehand.as_kwargs())))
    while True:
        pieces = cursor.take()
        if pieces:
            tokens = [piece for piece in pieces if not isinstance(piece, BaseException)]
            if tokens:
                outbox.put_tokens(tokens)
        waiter = cursor.waiter()
        if waiter is None:
            break
        await waiter
    message, error = cursor.result()
    if error is not None:
        outbox.put(("x", encode_error(error)))
    else:
        assert message is not None
        fields = {name: value for name, value in message.as_kwargs().items() if name not in ("content",)}
        outbox.put(("e", encode_value(fields)))


async def _pump(agent: MiniAgent, inputs: list[Any], kwargs: Mapping[str, Any], outbox: _Outbox) -> None:
    call = agent.initiate_call(**{name: decode_value(value) for name, value in kwargs.items()})
    try:
        if inputs:
            call.send_message([decode_value(item) for item in inputs])
        replies = call.reply_sequence()
        cursor: StreamCursor[Any, Any] = StreamCursor(replies)
        last_error: BaseException | None = None
        while True:
            pieces = cursor.take()
            for piece in pieces:
                if isinstance(piece, BaseException):
                    last_error = piece
                    outbox.put(("X", encode_error(piece)))
                else:
                    last_error = None
                    await _stream_message(piece, outbox)
            if pieces:  # more may have come while a message streamed
                continue
            waiter = cursor.waiter()
            if waiter is None:
                break
            await waiter
    except asyncio.CancelledError:
        call.cancel()
        raise
    if call.status is AgentCallStatus.CANCELLED or isinstance(last_error, asyncio.CancelledError):
        if outbox.events and outbox.events[-1][0] == "X":
            outbox.events.pop()
        outbox.put(("C",))
    elif call.status is AgentCallStatus.FAILED and last_error is not None and last_error is call.error:
        outbox.events[-1] = ("F", outbox.events[-1][1])  # the agent's own failure ends the call, it is no piece
        outbox.more.set()
    else:
        outbox.put(("D",))


class AgentWorker:
    """Runs agent calls in a Ray worker process (an async actor: many calls at once, each in its own task)."""

    def __init__(self) -> None:
        self._agents: dict[str, MiniAgent] = {}
        self._running: dict[str, asyncio.Future[None]] = {}
        self._cancelled: set[str] = set()

    async def cancel_call(self, key: str) -> bool:
        """Cancel the call `key` (sent next to `ray.cancel`, which misses a generator between two of its items)."""
        task = self._running.get(key)
        if task is None:
            self._cancelled.add(key)  # not started yet: it ends as soon as it starts
            return False
        return task.cancel()

    def _agent(self, spec: Mapping[str, Any]) -> MiniAgent:
        key = repr(sorted(spec.items()))
        agent = self._agents.get(key)
        if agent is None:
            agent = self._agents[key] = resolve_agent(spec)
        return agent

    async def run(
        self,
        key: str,
        spec: Mapping[str, Any],
        inputs: list[Any],
        kwargs: Mapping[str, Any],
        batch_seconds: float,
        batch_tokens: int,
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Run one call (`key` names it for `cancel_call`); yields batches of events (see the module docstring)."""
        import ray  # only ever called inside a Ray worker

        context = ray.get_runtime_context()
        yield [("s", context.get_node_id(), os.getpid(), context.get_actor_id())]
        # Failures go back to the caller, which reports them: the worker does not log them a second time.
        async with MiniAgents(errors_as_messages=False, log_level_for_errors=logging.DEBUG):
            outbox = _Outbox(batch_tokens)
            try:
                agent = self._agent(spec)
            except Exception as error:
                yield [("F", encode_error(error))]
                return
            pump = asyncio.ensure_future(_pump(agent, inputs, kwargs, outbox))
            # Cancelled by `cancel_call`: Ray's own cancel misses a generator waiting between two of its items.
            self._running[key] = pump
            if key in self._cancelled:
                self._cancelled.discard(key)
                pump.cancel()
            try:
                while True:
                    if not outbox.events:
                        if pump.done():
                            break
                        more = asyncio.ensure_future(outbox.more.wait())
                        await asyncio.wait((pump, more), return_when=asyncio.FIRST_COMPLETED)
                        more.cancel()
                    if not pump.done() and outbox.tokens < batch_tokens and batch_seconds > 0:
                        full = asyncio.ensure_future(outbox.full.wait())
                        await asyncio.wait((pump, full), timeout=batch_seconds, return_when=asyncio.FIRST_COMPLETED)
                        full.cancel()
                    if outbox.events:
                        yield outbox.drain()
                if not pump.cancelled() and pump.exception() is not None:
                    yield [("F", encode_error(pump.exception()))]  # type: ignore[arg-type]
            finally:
                self._running.pop(key, None)
                if not pump.done():
                    pump.cancel()
                    await asyncio.gather(pump, return_exceptions=True)
