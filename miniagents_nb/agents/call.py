"""`AgentCall`: one call of an agent, its input and reply sequences, and what observers may read of it.

A call is the unit every observer (views, recorders, exporters) follows. Its public surface says everything they
need and nothing they could break: who (`agent`, `parent`), with what (`kwargs`, `input_sequence_promise`), what
came back (`reply_sequence_promise`), how it went (`status`, `error`, the `queued_at` / `started_at` / `ended_at`
monotonic timestamps), and one action, `cancel()`, safe from any thread.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import Token
from types import MappingProxyType
from typing import Any

from miniagents_nb.agents.context import MiniAgents
from miniagents_nb.agents.definition import AgentDefinition
from miniagents_nb.agents.events import (
    AgentCallCancelled,
    AgentCallEvent,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    AgentCallStatus,
    MessageReplied,
    ObservedCall,
)
from miniagents_nb.agents.interaction import InteractionContext, _current_interaction, display_trace
from miniagents_nb.agents.nodes import AgentCallNode, AgentReplyNode
from miniagents_nb.errors import NoActiveContextError
from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise, MessageType
from miniagents_nb.messages.call_sequences import closed_call_sequence, open_call_sequence
from miniagents_nb.promising.promise import Promise
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["AgentCall", "AgentCallStatus"]

_monotonic = time.monotonic
_HAS_CANCELLING = sys.version_info >= (3, 11)  # `Task.cancelling()`
_new_event = tuple.__new__  # an event is a tuple of its fields (see `miniagents_nb.agents.events`)


class AgentCall:
    """One call of an agent: its input (which may be sent over time) and its reply sequence."""

    __slots__ = (
        "_cancelled",
        "_errors_as_messages",
        "_input",
        "_kwargs",
        "_loop",
        "_miniagents",
        "_now",
        "_parent",
        "_reply",
        "_task",
        "agent",
        "call_id",
        "ended_at",
        "error",
        "queued_at",
        "started_at",
        "status",
    )

    def __init__(
        self,
        agent: AgentDefinition,
        kwargs: dict[str, Any],
        start_soon: bool | Sentinel,
        errors_as_messages: bool | Sentinel,
        *,
        register: bool,
        input_messages: Any = NO_VALUE,
    ) -> None:
        """`input_messages`: NO_VALUE leaves the input open (`initiate_call`); None or frozen messages close it."""
        self.agent = agent
        self._kwargs = kwargs
        self._miniagents = MiniAgents.get_current()
        self._parent = _current_interaction.get()
        self._task: asyncio.Task[None] | None = None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # a context activated by hand, outside any loop
            self._loop = None
        self._cancelled = False
        self.status = AgentCallStatus.QUEUED
        """Where the call is now (see `AgentCallStatus`)."""
        self.error: BaseException | None = None
        """What the agent function raised (for a `FAILED` call)."""
        clock = agent._event_clock
        self._now: Callable[[], float] = _monotonic if clock is None else clock
        self.queued_at = self._now()
        """When the call was made (`time.monotonic()`; `miniagents_nb.events.wall_clock` converts)."""
        self.started_at: float | None = None
        self.ended_at: float | None = None
        # Only observed calls get a number (and events): unobserved ones pay nothing for the observer API.
        self.call_id: int | None = self._miniagents._call_id_if_observed()
        """This call's number within its `MiniAgents` context (None unless someone observes the context); read it,
        never set it (a plain attribute: observers read it for every event)."""
        self._errors_as_messages = (
            self._miniagents.errors_as_messages if errors_as_messages is NO_VALUE else bool(errors_as_messages)
        )
        miniagents = self._miniagents
        if input_messages is None:
            self._input = miniagents._empty_input_sequence()  # shared: nothing to send, nothing to hold
        elif type(input_messages) is str or isinstance(input_messages, Message):
            self._input = closed_call_sequence(miniagents, input_messages)  # one message, ended at once
        else:
            self._input = open_call_sequence(miniagents, False, False)
            if input_messages is not NO_VALUE:
                self._input._append_frozen(input_messages)
                self._input.close()
        self._reply = open_call_sequence(miniagents, start_soon, self._errors_as_messages, self._start_agent)
        if self.call_id is not None:
            # The reply sequence tells this call of every message that originates in it, and forgets the call once
            # it ended (see `MessageSequence._ended`): no reference cycle is left for the garbage collector.
            self._reply.on_message = self._replied
            plain = miniagents._plain_recording
            if plain is None:
                miniagents._emit(_new_event(AgentCallQueued, (self, self.queued_at)))
            else:  # the context's own recording is its only observer: it takes plain arguments, no event is built
                plain.call_queued(self, self.queued_at)
        if register:
            if self._parent is not None:
                if self._parent._child_calls is None:
                    self._parent._child_calls = []
                self._parent._child_calls.append(self)
            else:
                self._miniagents._open_calls.append(self.finish)

    def _replied(self, promise: MessagePromise) -> None:
        miniagents = self._miniagents
        plain = miniagents._plain_recording
        if plain is None:
            miniagents._emit(_new_event(MessageReplied, (self, self._now(), promise)))
        else:
            plain.message_replied(self, self._now(), promise)

    # --- what observers read -------------------------------------------------------------------------------------

    @property
    def parent(self) -> ObservedCall | None:
        """The call whose agent made this call (None at the top level)."""
        parent = self._parent
        return parent._call if parent is not None else None

    @property
    def miniagents(self) -> MiniAgents:
        """The context the call was made in (call ids are numbered per context)."""
        return self._miniagents

    @property
    def kwargs(self) -> Mapping[str, Any]:
        """The (frozen) keyword arguments given to this call, on top of the agent's own."""
        return MappingProxyType(self._kwargs)

    @property
    def input_sequence_promise(self) -> MessageSequencePromise:
        """The call's input, as the agent reads it (`ctx.message_promises`); reading it never finishes the call."""
        return self._input.sequence_promise

    @property
    def reply_sequence_promise(self) -> MessageSequencePromise:
        """The call's replies; unlike `reply_sequence()`, reading it does not finish the input."""
        return self._reply.sequence_promise

    # --- what callers do -----------------------------------------------------------------------------------------

    def cancel(self) -> bool:
        """Cancel the agent (running or not started yet); its reply sequence ends with `CancelledError`.

        Safe from any thread (a cancel from another thread is handed to the call's loop, and returns True when the
        call had not ended). Returns False when the agent had already ended or was cancelled before.
        """
        loop = self._loop
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if not here and loop is not None and loop.is_running():
            if self.status.is_final or self._cancelled:
                return False
            loop.call_soon_threadsafe(self.cancel)
            return True
        if self._cancelled:
            return False
        task = self._task
        if task is not None and self.status is not AgentCallStatus.QUEUED:
            if task.done():
                return False
            return task.cancel()
        # Not started: no task yet, or a task that has not run its first step (cancelling that task would skip the
        # function and its ending alike). It never will start; `_arun` sees `_cancelled` and returns at once.
        self._cancelled = True
        appender = self._reply.message_appender
        if appender.is_open:
            appender.close(asyncio.CancelledError())
        self._end(AgentCallStatus.CANCELLED, AgentCallCancelled)
        return True

    def send_message(self, messages: MessageType, out_of_order: bool = False) -> AgentCall:
        """Send more input (frozen now); `AppenderClosedError` once the call is finished."""
        self._input.message_appender.append(messages, out_of_order)
        return self

    def send_out_of_order(self, messages: MessageType) -> AgentCall:
        """Send input that may overtake what was sent before it."""
        return self.send_message(messages, out_of_order=True)

    def reply_sequence(self, finish_call: bool = True) -> MessageSequencePromise:
        """The agent's replies; by default this also finishes the input (use `finish_call=False` for full duplex)."""
        if finish_call:
            self.finish()
        return self._reply.sequence_promise

    def finish(self) -> AgentCall:
        """Close the input: the agent sees the end of `ctx.message_promises`."""
        self._input.message_appender.close()
        return self

    @property
    def is_finished(self) -> bool:
        """Whether the input is closed (not whether the agent is done: see `status`)."""
        return not self._input.message_appender.is_open

    # --- running the agent ---------------------------------------------------------------------------------------

    def _start_agent(self) -> None:
        if self._cancelled:
            return
        if not self._miniagents.is_active:
            self._cancelled = True  # it never runs
            self._fail_unstarted()
            return
        self._task = self._miniagents.start_self_tracked(self._arun())

    def _fail_unstarted(self) -> None:
        """A call made with `start_soon=False` whose context has finished before anyone consumed it: the context
        no longer waits for its agent nor persists or records what it replies, so running it now would lose those
        silently. It fails instead, with an error at the start of its reply sequence."""
        name = type(self._miniagents).__name__
        error = NoActiveContextError(
            f"The call of {self.agent.alias} was made with start_soon=False in a {name} context that has finished "
            "before its replies were consumed, so it cannot run there any more (nothing would wait for it, persist or "
            f"record its replies): consume the replies inside the same `async with {name}():` block, or trigger the "
            "agent with start_soon=True."
        )
        appender = self._reply.message_appender
        if appender.is_open:
            appender.close(error)
        self.error = error
        self.status = AgentCallStatus.FAILED
        self.ended_at = at = self._now()
        if self.call_id is not None:
            self._emit_failed(at, error)

    def _emit_failed(self, at: float, error: BaseException) -> None:
        miniagents = self._miniagents
        plain = miniagents._plain_recording
        if plain is None:
            miniagents._emit(_new_event(AgentCallFailed, (self, at, error)))
        else:
            plain.call_ended(self, at, AgentCallStatus.FAILED, error)

    def _end(self, status: AgentCallStatus, event_class: type[AgentCallEvent]) -> None:
        self.status = status
        self.ended_at = at = self._now()
        if self.call_id is not None:
            miniagents = self._miniagents
            plain = miniagents._plain_recording
            if plain is None:
                miniagents._emit(_new_event(event_class, (self, at)))
            else:
                plain.call_ended(self, at, status, None)

    async def _arun(self) -> None:
        """The agent's task: run the function, end the reply sequence, say how it went (one coroutine per call).

        What happens before and after the function is in plain methods: every call's coroutine exists from the
        moment it is triggered, and a frame with few locals keeps a big fan-out small.
        """
        __tracebackhide__ = True  # IPython shows the agent's own frames of a failure, not the engine's
        try:
            if self._cancelled:  # cancelled after its task was made, before it ran: it has ended already
                return
            ctx, kwargs, token = self._begin()
            error: BaseException | None = None
            try:
                func: Any = self.agent.wrapped_func_or_class
                if isinstance(func, type):
                    await func(ctx=ctx, **kwargs)()  # keyword-only, so pydantic-model agents work too
                else:
                    await func(ctx, **kwargs)
            except BaseException as raised:  # delivered to consumers at its position, interrupts included
                error = raised
            try:
                persist = self._await_reply_persistence()
                if ctx._needs_finalizing(persist):  # most agents leave nothing to wait for: no coroutine then
                    await ctx._afinalize(persist)
            except BaseException as raised:
                error = error or raised
            if self._conclude(ctx, token, error):
                await self._arecord_nodes()
            if isinstance(error, asyncio.CancelledError):
                raise error
        finally:
            self._miniagents.child_tasks.discard(self._task)  # what forget_current_task() does

    def _begin(self) -> tuple[InteractionContext, dict[str, Any], Token[Any]]:
        """The agent starts: its `ctx`, the keyword arguments of its function, the `ctx` made current."""
        agent = self.agent
        ctx = InteractionContext(agent, self._input.sequence_promise, self._reply, self._parent, self, self._miniagents)
        frozen, loose = agent._frozen_kwargs, agent._non_freezable_kwargs
        kwargs = {**frozen, **loose, **self._kwargs} if frozen or loose else self._kwargs
        token = _current_interaction.set(ctx)
        self.status = AgentCallStatus.RUNNING
        self.started_at = self._now()
        if self.call_id is not None:
            miniagents = self._miniagents
            plain = miniagents._plain_recording
            if plain is None:
                miniagents._emit(_new_event(AgentCallStarted, (self, self.started_at)))
            else:
                plain.call_started(self, self.started_at)
        return ctx, kwargs, token

    def _conclude(self, ctx: InteractionContext, token: Token[Any], error: BaseException | None) -> bool:
        """The agent ended (with `error`, or None): log, end the reply sequence, say so; True when nodes are due."""
        miniagents = self._miniagents
        try:
            if isinstance(error, Exception):  # logged while this agent's context is current: the trace names it
                miniagents.log_error_once(
                    error,
                    f"AN ERROR OCCURRED IN AGENT {self.agent.alias} (agent trace: {display_trace(ctx.get_agent_trace())})",
                    fake_log=self._errors_as_messages,
                )
        finally:
            _current_interaction.reset(token)
        reply = self._reply
        if error is None:
            reply.close()
            # A cancellation swallowed inside the agent (e.g. by a capturing token appender) still cancelled it.
            task = self._task
            if _HAS_CANCELLING and task is not None and task.cancelling():  # type: ignore[attr-defined,unused-ignore]
                self._end(AgentCallStatus.CANCELLED, AgentCallCancelled)
            else:
                self._end(AgentCallStatus.FINISHED, AgentCallFinished)
        else:
            reply.close(error)
            if isinstance(error, asyncio.CancelledError):
                self._end(AgentCallStatus.CANCELLED, AgentCallCancelled)
            else:
                self.error = error
                self.status = AgentCallStatus.FAILED
                self.ended_at = at = self._now()
                if self.call_id is not None:
                    self._emit_failed(at, error)
        return miniagents.has_resolution_work()

    def _await_reply_persistence(self) -> bool:
        value = self.agent.await_reply_persistence
        if value is None:
            return bool(self._miniagents.await_reply_persistence_before_agent_finish)
        return value

    async def _arecord_nodes(self) -> None:
        """Build the call and reply nodes (only done when someone listens for resolved promises)."""
        try:
            inputs = await self._input.sequence_promise
        except BaseException:
            return
        metadata = self.agent.interaction_metadata.as_kwargs()
        call_node = AgentCallNode(messages=inputs, agent=self.agent, **{**metadata, **self._kwargs})
        Promise(prefill_result=call_node)
        try:
            replies = await self._reply.sequence_promise
        except BaseException:
            return
        Promise(prefill_result=AgentReplyNode(replies=replies, agent=self.agent, agent_call=call_node, **metadata))
