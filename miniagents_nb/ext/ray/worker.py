"""The Ray actor that runs agents: one `MiniAgents` context per call, its replies streamed back in batches.

`AgentWorker.run` is an async generator that Ray turns into a streaming generator (`num_returns="streaming"`): each
item is one *batch* of events, collected for `batch_seconds` or until `batch_tokens` tokens are waiting, so a fast
token stream costs one Ray object per batch, not per token. The events, in reply order (`at`: when it happened
here, in epoch seconds; the caller's views and run store show these moments, not when the news arrived):

- `("a",)`: the actor took the call (always a batch of its own, sent at once: the actor is up);
- `("s", node_id, pid, actor_id, at)`: the remote agent started (sent at once, alone; later than `a` when the
  worker's loop was busy with another call's agent, e.g. a CPU-bound one, so its run starts when it really did);
- `("w", message, at)`: a whole message (already resolved when its turn came);
- `("m", class_path, known_beforehand, at)`: a message starts streaming; `("t", [token, ...])`: its tokens;
  `("e", fields)`: it ended (its fields other than the text); `("x", error)`: it failed mid-stream;
- `("X", error, at)`: a failure at this position of the reply sequence (a nested reply failed; the agent went on);
- `("F", error, at)`: the agent itself failed (the sequence ends here); `("C", at)`: it was cancelled;
  `("D", at)`: done;
- `("R", message_id)`: the agent replied a message one of its nested calls replied (sent already, see below).

The calls the remote agent makes in the worker are reported too (`miniagents_nb.ext.ray.reporter`), so that the
caller mirrors them into its call tree: `("q", call_id, parent_id, alias, description, agent_kwargs, metadata,
call_kwargs, made_at, started_at)` when one starts (parent 0: the remote agent itself; `started_at` None: it
ended without starting), `("f", call_id, "D" | "F" | "C", error, at, inputs)` when it ends, `("r", call_id,
message_id, message, at)` / `("p", call_id, message_id, class_path, known_beforehand, at)` when it replies a whole /
a streamed message, whose tokens follow as `("pt", message_id, [token, ...])` and its end as `("pe", message_id,
fields)` or `("px", message_id, error)`. Call events go out at once (not after `batch_seconds`).

Messages and errors are encoded with `miniagents_nb.ext.ray.wire`. This module never imports `ray`: the class is
turned into an actor class by `miniagents_nb.ext.ray.pool`, and Ray imports it in the worker by its path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from miniagents_nb.agents import AgentCallStatus, MiniAgent, MiniAgents
from miniagents_nb.events import wall_clock
from miniagents_nb.ext.ray.inputs import InputFeed, InputFeeds
from miniagents_nb.ext.ray.outbox import Outbox, stream_start, stream_tokens, whole_message
from miniagents_nb.ext.ray.reporter import CallReporter
from miniagents_nb.ext.ray.wire import decode_value, encode_error, encode_value, resolve_agent
from miniagents_nb.messages import MessagePromise
from miniagents_nb.promising import StreamCursor

__all__ = ["AgentWorker"]


async def _stream_message(promise: MessagePromise, outbox: Outbox) -> None:
    message_id = outbox.message_id(promise)
    if message_id is not None:  # a nested call's message, forwarded: it was sent already
        outbox.put(("R", message_id))
        return
    message = whole_message(promise)
    if message is not None:
        outbox.put(("w", encode_value(message), time.time()))
        return
    outbox.put(("m", *stream_start(promise), time.time()))
    await stream_tokens(promise, outbox)


async def _pump(
    agent: MiniAgent, inputs: list[Any] | None, kwargs: Mapping[str, Any], outbox: Outbox, feed: InputFeed | None
) -> None:
    call = agent.initiate_call(**{name: decode_value(value) for name, value in kwargs.items()})
    # A failure is held until the next piece comes: the last one may be the agent's own failure, which ends the
    # call (`F`) instead of sitting at a position (`X`).
    held: BaseException | None = None
    try:
        if inputs:
            call.send_message([decode_value(item) for item in inputs])
        if feed is not None:  # the input streams in (`send_input`)
            replies = call.reply_sequence(finish_call=False)
            feed.attach(call)
        else:
            replies = call.reply_sequence()
        cursor: StreamCursor[Any, Any] = StreamCursor(replies)
        while True:
            pieces = cursor.take()
            for piece in pieces:
                if held is not None:
                    outbox.put(("X", outbox.error(held), time.time()))
                    held = None
                if isinstance(piece, BaseException):
                    held = piece
                else:
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
    ended = time.time() if call.ended_at is None else wall_clock(call.ended_at)
    if call.status is AgentCallStatus.CANCELLED or isinstance(held, asyncio.CancelledError):
        outbox.put(("C", ended))
    elif call.status is AgentCallStatus.FAILED and held is not None and held is call.error:
        outbox.put(("F", outbox.error(held), ended))
    else:
        if held is not None:
            outbox.put(("X", outbox.error(held), time.time()))
        outbox.put(("D", ended))


async def _settle(pump: asyncio.Future[None], reporter: CallReporter) -> None:
    """Done when the remote call is, and so are the calls under it (unless it was cancelled: then at once)."""
    await asyncio.wait((pump,))
    if not pump.cancelled():
        await reporter.settled.wait()


class AgentWorker:
    """Runs agent calls in a Ray worker process (an async actor: many calls at once, each in its own task)."""

    def __init__(self, max_calls: int | None = None) -> None:
        # `max_concurrency` of the `ray_agent`: calls beyond it wait here, not in Ray's queue of method calls, where
        # a call's `send_input` and `cancel_call` would wait behind the calls running (the input of a call that
        # holds the last slot, behind that very call). Ray runs other concurrency groups in other threads.
        self._slots = asyncio.Semaphore(max_calls) if max_calls is not None else None
        self._agents: dict[str, MiniAgent] = {}
        self._running: dict[str, asyncio.Future[None]] = {}
        self._cancelled: set[str] = set()
        self._inputs = InputFeeds()

    async def send_input(self, key: str, number: int, kind: str, data: Any) -> None:
        """Piece `number` of the streamed input of call `key`: a message, an error, or its end (see `inputs`)."""
        feed = self._inputs.feed(key)
        if feed is not None:
            feed.put(number, kind, data)

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
        inputs: list[Any] | None,
        kwargs: Mapping[str, Any],
        batch_seconds: float,
        batch_tokens: int,
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Run one call (`key` names it for `cancel_call` and `send_input`); yields batches of events (see the
        module docstring). `inputs` None: the input streams in through `send_input`."""
        import ray  # only ever called inside a Ray worker

        slots = self._slots
        if slots is not None:
            await slots.acquire()  # the call starts (and says so) when one of the actor's slots is free
        try:
            context = ray.get_runtime_context()
            yield [("a",)]
            where = (context.get_node_id(), os.getpid(), context.get_actor_id())
            batches = self._run(key, spec, inputs, kwargs, batch_seconds, batch_tokens, where)
            try:
                async for batch in batches:
                    yield batch
            finally:
                self._inputs.end(key)
                await batches.aclose()  # closed with this one (Ray closes this one when the caller goes away)
        finally:
            if slots is not None:
                slots.release()

    async def _run(
        self,
        key: str,
        spec: Mapping[str, Any],
        inputs: list[Any] | None,
        kwargs: Mapping[str, Any],
        batch_seconds: float,
        batch_tokens: int,
        where: tuple[str, int, str],
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        # Failures go back to the caller, which reports them: the worker does not log them a second time.
        async with MiniAgents(errors_as_messages=False, log_level_for_errors=logging.DEBUG) as miniagents:
            outbox = Outbox(batch_tokens)
            try:
                agent = self._agent(spec)
            except Exception as error:
                yield [("F", encode_error(error), time.time())]
                return
            reporter = CallReporter(outbox, where)
            miniagents.subscribe(reporter)
            feed = self._inputs.feed(key) if inputs is None else None
            pump = asyncio.ensure_future(_pump(agent, inputs, kwargs, outbox, feed))
            done = asyncio.ensure_future(_settle(pump, reporter))
            # Cancelled by `cancel_call`: Ray's own cancel misses a generator waiting between two of its items.
            self._running[key] = pump
            if key in self._cancelled:
                self._cancelled.discard(key)
                pump.cancel()
            try:
                while True:
                    if outbox.head is not None:
                        yield outbox.take_head()
                        continue
                    if not outbox.events:
                        if done.done():
                            break
                        more = asyncio.ensure_future(outbox.more.wait())
                        await asyncio.wait((done, more), return_when=asyncio.FIRST_COMPLETED)
                        more.cancel()
                        continue
                    if not done.done() and not outbox.full.is_set() and batch_seconds > 0:
                        full = asyncio.ensure_future(outbox.full.wait())
                        await asyncio.wait((done, full), timeout=batch_seconds, return_when=asyncio.FIRST_COMPLETED)
                        full.cancel()
                    if outbox.events:
                        yield outbox.drain()
                if not pump.cancelled() and pump.exception() is not None:
                    yield [("F", encode_error(pump.exception()), time.time())]  # type: ignore[arg-type]
            finally:
                self._running.pop(key, None)
                reporter.close()
                for task in (pump, done):
                    if not task.done():
                        task.cancel()
                await asyncio.gather(pump, done, return_exceptions=True)
