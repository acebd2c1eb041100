"""Agents: `@miniagent`, `MiniAgent`, `AgentCall`, `InteractionContext` and the interaction nodes.

An agent is an async function (or a class with an async `__call__`) that reads `ctx.message_promises` and replies
with `ctx.reply(...)`. Calling it (`trigger`) returns its reply sequence at once; the function itself starts at the
next task switch (or when the replies are first consumed, with `start_soon=False`).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, overload

from pydantic import Field

from miniagents_nb.errors import AgentDefinitionError, NoActiveContextError
from miniagents_nb.events import (
    AgentCallCancelled,
    AgentCallEvent,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    MessageReplied,
)
from miniagents_nb.messages import (
    Message,
    MessagePromise,
    MessageSequence,
    MessageSequenceAppender,
    MessageSequencePromise,
    freeze_message_item,
)
from miniagents_nb.miniagents_context import MiniAgents
from miniagents_nb.promising.ext.frozen import Frozen, freeze_kwargs
from miniagents_nb.promising.promise import Promise
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = [
    "AgentCall",
    "AgentCallNode",
    "AgentFunction",
    "AgentInteractionNode",
    "AgentReplyNode",
    "InteractionContext",
    "MiniAgent",
    "miniagent",
]

AgentFunction = Callable[..., Awaitable[None]]
"""`async def agent(ctx: InteractionContext, **kwargs) -> None`."""

_current_interaction: ContextVar[InteractionContext | None] = ContextVar(
    "miniagents_nb_current_interaction", default=None
)

_ALIAS_WORDS = re.compile(r"[A-Z][a-z]+?(?=[A-Z]+$)|.+?(?=[A-Z][a-z]|$)")


def normalize_alias(name: str) -> str:
    """`CamelCaseAgent` -> `CAMEL_CASE_AGENT`, `my_agent` -> `MY_AGENT` (upstream's rule, acronyms kept whole)."""
    return "_".join(_ALIAS_WORDS.findall(name)).upper()


def _check_agent_callable(func_or_class: Any) -> None:
    if not callable(func_or_class):
        raise AgentDefinitionError(
            f"A `@miniagent` decorated type must be a callable, got {type(func_or_class).__name__}: "
            "decorate an `async def` function or a class with an `async def __call__`."
        )
    target = func_or_class.__call__ if inspect.isclass(func_or_class) else func_or_class
    if not inspect.iscoroutinefunction(target) and not inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - callable objects with an async __call__
    ):
        raise AgentDefinitionError(
            f"A `@miniagent` decorated class or function must be async: "
            f"`{getattr(func_or_class, '__name__', func_or_class)}` is not; define it with `async def`."
        )


class MiniAgent(Frozen):
    """An agent: a configured async function with an alias. Agents are immutable; `fork()` makes variants."""

    alias: str
    description: str | None = Field(default=None, exclude=True)
    interaction_metadata: Frozen = Field(default_factory=lambda: Frozen(), exclude=True)

    # The runtime configuration below is kept in plain instance attributes (set in `__init__`), not pydantic private
    # attributes: those are read through `BaseModel.__getattr__`, which is slow on the per-call path.

    def __init__(
        self,
        func_or_class: Any,
        *,
        alias: str | None = None,
        description: str | None = None,
        normalize_func_or_class_name: bool = True,
        normalize_spaces_in_docstring: bool = True,
        await_reply_persistence: bool | Sentinel = NO_VALUE,
        interaction_metadata: dict[str, Any] | Frozen | None = None,
        non_freezable_kwargs: dict[str, Any] | None = None,
        **kwargs_to_freeze: Any,
    ) -> None:
        _check_agent_callable(func_or_class)
        if alias is None:
            alias = getattr(func_or_class, "__name__", type(func_or_class).__name__)
            if normalize_func_or_class_name:
                alias = normalize_alias(alias)
        template = description if description is not None else inspect.getdoc(func_or_class)
        if template and normalize_spaces_in_docstring:
            template = " ".join(template.split())
        if interaction_metadata is None:
            metadata = Frozen()
        elif isinstance(interaction_metadata, Frozen):
            metadata = interaction_metadata
        else:
            metadata = Frozen(**interaction_metadata)
        super().__init__(
            alias=alias,
            description=template.replace("{AGENT_ALIAS}", alias) if template else None,
            interaction_metadata=metadata,
        )
        self._func: Any = func_or_class
        self._frozen_kwargs: dict[str, Any] = freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {alias}")
        self._non_freezable_kwargs: dict[str, Any] = dict(non_freezable_kwargs or {})
        self._description_template: str | None = template
        self._normalize_name: bool = normalize_func_or_class_name
        self._await_reply_persistence: bool | Sentinel = await_reply_persistence
        object.__setattr__(self, "__name__", alias)
        object.__setattr__(self, "__doc__", self.description)

    @property
    def wrapped_func_or_class(self) -> Any:
        """The function or class this agent runs."""
        return self._func

    # --- calling -------------------------------------------------------------------------------------------------

    def trigger(
        self,
        messages: Any = None,
        *,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        start_asap: bool | Sentinel = NO_VALUE,
        **kwargs_to_freeze: Any,
    ) -> MessageSequencePromise:
        """Call the agent with `messages` (any nesting; None for no input) and return its reply sequence at once.

        Everything is checked and frozen here, before anything is scheduled: bad input raises now and the agent
        never runs.
        """
        frozen_messages = None if messages is None else freeze_message_item(messages)
        call = AgentCall(
            self,
            freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {self.alias}") if kwargs_to_freeze else {},
            start_asap if start_soon is NO_VALUE else start_soon,
            errors_as_messages,
            register=False,
            input_messages=frozen_messages,
        )
        return call.reply_sequence()

    def initiate_call(
        self,
        *,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        start_asap: bool | Sentinel = NO_VALUE,
        **kwargs_to_freeze: Any,
    ) -> AgentCall:
        """Open a call whose input you send over time (`send_message`), then read `reply_sequence()`."""
        return AgentCall(
            self,
            freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {self.alias}") if kwargs_to_freeze else {},
            start_asap if start_soon is NO_VALUE else start_soon,
            errors_as_messages,
            register=True,
        )

    def inquire(self, messages: Any = None, **kwargs: Any) -> MessageSequencePromise:
        """The older name of `trigger`."""
        return self.trigger(messages, **kwargs)

    def initiate_inquiry(self, **kwargs: Any) -> AgentCall:
        """The older name of `initiate_call`."""
        return self.initiate_call(**kwargs)

    def fork(
        self,
        alias: str | None = None,
        description: str | None = None,
        *,
        interaction_metadata: dict[str, Any] | Frozen | None = None,
        non_freezable_kwargs: dict[str, Any] | None = None,
        **kwargs_to_freeze: Any,
    ) -> MiniAgent:
        """A variant of this agent: same function, merged configuration (the new values win)."""
        metadata = self.interaction_metadata.as_kwargs()
        if interaction_metadata is not None:
            metadata.update(
                dict(interaction_metadata) if isinstance(interaction_metadata, Frozen) else interaction_metadata
            )
            metadata.pop("class_", None)
        forked = type(self)(  # subclasses (e.g. LLM agents) fork into their own kind
            self._func,
            alias=alias if alias is not None else self.alias,
            description=description if description is not None else self._description_template,
            normalize_func_or_class_name=self._normalize_name,
            normalize_spaces_in_docstring=False,
            await_reply_persistence=self._await_reply_persistence,
            interaction_metadata=metadata,
            non_freezable_kwargs={**self._non_freezable_kwargs, **(non_freezable_kwargs or {})},
        )
        forked._frozen_kwargs = {
            **self._frozen_kwargs,
            **freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {forked.alias}"),
        }
        return forked

    async def _ainvoke(self, ctx: InteractionContext, kwargs: dict[str, Any]) -> None:
        func: Any = self._func
        if isinstance(func, type):
            factory: Callable[..., Any] = func
            await factory(ctx=ctx, **kwargs)()  # keyword-only, so pydantic-model agents work too
        else:
            await func(ctx, **kwargs)


@overload
def miniagent(func_or_class: Any, /) -> MiniAgent: ...
@overload
def miniagent(
    func_or_class: None = None,
    *,
    alias: str | None = None,
    description: str | None = None,
    normalize_func_or_class_name: bool = True,
    normalize_spaces_in_docstring: bool = True,
    await_reply_persistence: bool | Sentinel = NO_VALUE,
    interaction_metadata: dict[str, Any] | None = None,
    non_freezable_kwargs: dict[str, Any] | None = None,
    **kwargs_to_freeze: Any,
) -> Callable[[Any], MiniAgent]: ...
def miniagent(func_or_class: Any = None, /, **options: Any) -> MiniAgent | Callable[[Any], MiniAgent]:
    """Turn an async function (or a class with an async `__call__`) into an agent; usable bare or with options."""
    if func_or_class is None:
        return lambda target: MiniAgent(target, **options)
    return MiniAgent(func_or_class, **options)


class AgentInteractionNode(Message):
    """A persisted record of an interaction with `agent`."""

    agent: MiniAgent


class AgentCallNode(AgentInteractionNode):
    """The input of one agent call (with the call's arguments and the agent's interaction metadata)."""

    messages: tuple[Message, ...]


class AgentReplyNode(AgentInteractionNode):
    """The replies of one agent call, linked to its `AgentCallNode`."""

    agent_call: AgentCallNode
    replies: tuple[Message, ...]


class AgentCall:
    """One call of an agent: its input (which may be sent over time) and its reply sequence."""

    __slots__ = (
        "_call_id",
        "_cancelled",
        "_errors_as_messages",
        "_input",
        "_kwargs",
        "_miniagents",
        "_parent",
        "_reply",
        "_task",
        "agent",
    )

    def __init__(
        self,
        agent: MiniAgent,
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
        self._cancelled = False
        # Only observed calls get a number (and events): unobserved ones pay nothing for the observer API.
        self._call_id: int | None = self._miniagents._new_call_id() if self._miniagents._observed() else None
        self._errors_as_messages = (
            self._miniagents.errors_as_messages if errors_as_messages is NO_VALUE else bool(errors_as_messages)
        )
        if input_messages is None:
            self._input = self._miniagents._empty_input_sequence()  # shared: nothing to send, nothing to hold
        else:
            self._input = MessageSequence(appender_capture_errors=True, start_soon=False, errors_as_messages=False)
            self._input.message_appender.open()
            if input_messages is not NO_VALUE:
                self._input._append(input_messages, False)
                self._input.message_appender.close()
        self._reply = MessageSequence(
            appender_capture_errors=True,
            start_soon=start_soon,
            errors_as_messages=self._errors_as_messages,
            on_start=self._start_agent,
        )
        self._reply.message_appender.open()
        if self._call_id is not None:
            self._announce()
        if register:
            if self._parent is not None:
                if self._parent._child_calls is None:
                    self._parent._child_calls = []
                self._parent._child_calls.append(self)
            else:
                self._miniagents._open_calls.append(self)

    def _announce(self) -> None:
        call_id = self._call_id
        assert call_id is not None
        miniagents = self._miniagents

        def replied(promise: MessagePromise) -> None:
            miniagents._emit(MessageReplied(call_id, promise))

        self._reply.on_message = replied
        miniagents._emit(
            AgentCallQueued(
                call_id,
                self.agent,
                self._caller_call_id(),
                reply_sequence=self._reply.sequence_promise,
                input_sequence=self._input.sequence_promise,
                kwargs=self._kwargs,
            )
        )

    def _caller_call_id(self) -> int | None:
        parent = self._parent
        return parent._call._call_id if parent is not None and parent._call is not None else None

    @property
    def call_id(self) -> int | None:
        """This call's number within its `MiniAgents` context (None unless someone observes the context)."""
        return self._call_id

    def cancel(self) -> bool:
        """Cancel the agent (running or not started yet); its reply sequence ends with `CancelledError`.

        Returns False when the agent had already finished or was cancelled before.
        """
        if self._task is not None:
            if self._task.done():
                return False
            return self._task.cancel()
        if self._cancelled:
            return False
        self._cancelled = True  # never started: it never will
        appender = self._reply.message_appender
        if appender.is_open:
            appender.close(asyncio.CancelledError())
        self._emit(AgentCallCancelled)
        return True

    def send_message(self, messages: Any, out_of_order: bool = False) -> AgentCall:
        """Send more input (frozen now); `AppenderClosedError` once the call is finished."""
        self._input.message_appender.append(messages, out_of_order)
        return self

    def send_out_of_order(self, messages: Any) -> AgentCall:
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
        """Whether the input is closed (not whether the agent is done)."""
        return not self._input.message_appender.is_open

    # --- running the agent ---------------------------------------------------------------------------------------

    def _start_agent(self) -> None:
        if not self._cancelled:
            self._task = self._miniagents._start_self_tracked(self._arun())

    def _emit(self, event_class: type[AgentCallEvent], *args: Any) -> None:
        if self._call_id is not None:
            self._miniagents._emit(event_class(self._call_id, self.agent, self._caller_call_id(), *args))

    async def _arun(self) -> None:
        try:
            await self._arun_agent()
        finally:
            self._miniagents._forget_current_task()

    async def _arun_agent(self) -> None:
        agent = self.agent
        reply_appender = self._reply.message_appender
        ctx = InteractionContext(agent, self._input.sequence_promise, reply_appender, self._parent, self)
        kwargs = {**agent._frozen_kwargs, **agent._non_freezable_kwargs, **self._kwargs}
        token = _current_interaction.set(ctx)
        error: BaseException | None = None
        self._emit(AgentCallStarted)
        try:
            await agent._ainvoke(ctx, kwargs)
        except BaseException as raised:  # delivered to consumers at its position, interrupts included
            error = raised
        try:
            await ctx._afinalize(self._await_reply_persistence())
        except BaseException as raised:
            error = error or raised
        try:
            if isinstance(error, Exception):  # logged while this agent's context is current: the trace names it
                self._miniagents.log_error_once(
                    error,
                    f"AN ERROR OCCURRED IN AGENT {agent.alias} (agent trace: {display_trace(ctx.get_agent_trace())})",
                    fake_log=self._errors_as_messages,
                )
        finally:
            _current_interaction.reset(token)
        if error is None:
            reply_appender.close()
            # A cancellation swallowed inside the agent (e.g. by a capturing token appender) still cancelled it.
            task = self._task
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            self._emit(AgentCallCancelled if cancelling is not None and cancelling() else AgentCallFinished)
        else:
            reply_appender.close(error)
            if isinstance(error, asyncio.CancelledError):
                self._emit(AgentCallCancelled)
            else:
                self._emit(AgentCallFailed, error)
        if self._miniagents._has_resolution_work():
            await self._arecord_nodes(ctx)
        if isinstance(error, asyncio.CancelledError):
            raise error

    def _await_reply_persistence(self) -> bool:
        value = self.agent._await_reply_persistence
        if value is NO_VALUE:
            return bool(self._miniagents.await_reply_persistence_before_agent_finish)
        return bool(value)

    async def _arecord_nodes(self, ctx: InteractionContext) -> None:
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


def display_trace(trace: list[MiniAgent]) -> str:
    """`INNER <- OUTER` for a list of agents, innermost first."""
    return " <- ".join(agent.alias for agent in trace)


class InteractionContext:
    """What an agent function gets as `ctx`: its input, its reply channel, and helpers to wait for work."""

    __slots__ = (
        "_awaitables",
        "_call",
        "_child_calls",
        "_reply_appender",
        "message_promises",
        "miniagents",
        "parent",
        "this_agent",
    )

    def __init__(
        self,
        this_agent: MiniAgent,
        message_promises: MessageSequencePromise,
        reply_streamer: MessageSequenceAppender,
        parent: InteractionContext | None = None,
        call: AgentCall | None = None,
    ) -> None:
        self.this_agent = this_agent
        self._call = call
        self.message_promises = message_promises
        self.miniagents = MiniAgents.get_current()
        self.parent = parent
        self._reply_appender = reply_streamer
        self._awaitables: list[Awaitable[Any]] | None = None  # both created on demand
        self._child_calls: list[AgentCall] | None = None

    @classmethod
    def get_current(cls) -> InteractionContext:
        """The context of the agent whose code is running now."""
        ctx = _current_interaction.get()
        if ctx is None:
            raise NoActiveContextError(
                "No InteractionContext is currently active: this only works inside an agent function."
            )
        return ctx

    def get_agent_trace(self) -> list[MiniAgent]:
        """This agent, its caller, its caller's caller, ..."""
        trace: list[MiniAgent] = []
        ctx: InteractionContext | None = self
        while ctx is not None:
            trace.append(ctx.this_agent)
            ctx = ctx.parent
        return trace

    def reply(self, messages: Any, out_of_order: bool = False) -> InteractionContext:
        """Reply (frozen now, flattened in the background, in order unless `out_of_order`)."""
        self._reply_appender.append(messages, out_of_order)
        return self

    def reply_out_of_order(self, messages: Any) -> InteractionContext:
        """Reply with messages that may overtake earlier replies of this agent (never those of its caller)."""
        self._reply_appender.append(messages, out_of_order=True)
        return self

    def make_sure_to_wait(self, awaitable: Awaitable[Any], start_soon_if_coroutine: bool = True) -> None:
        """Keep this agent's reply sequence open until `awaitable` is done (a coroutine is started right away)."""
        if start_soon_if_coroutine and inspect.iscoroutine(awaitable):
            awaitable = self.miniagents.start_soon(awaitable)
        if self._awaitables is None:
            self._awaitables = []
        self._awaitables.append(awaitable)

    async def await_now(self, suppress_deadlock_warning: bool = False) -> None:
        """Wait for everything registered with `make_sure_to_wait` so far."""
        if not suppress_deadlock_warning and any(not call.is_finished for call in self._child_calls or ()):
            warnings.warn(
                "Potential deadlock detected: unfinished agent call(s) encountered while awaiting in "
                f"{self.this_agent.alias}. Finish them (`call.finish()` or `reply_sequence()`) before awaiting, "
                "or pass `suppress_deadlock_warning=True`.",
                RuntimeWarning,
                stacklevel=2,
            )
        while self._awaitables:
            awaitables, self._awaitables = self._awaitables, None
            await asyncio.gather(*awaitables, return_exceptions=True)

    async def afinish_early(self, make_sure_to_wait: bool = True) -> None:
        """Close this agent's reply sequence now; the function may go on, but cannot reply any more."""
        if make_sure_to_wait:
            await self.await_now()
        self._reply_appender.close()

    async def _afinalize(self, await_reply_persistence: bool) -> None:
        for call in self._child_calls or ():
            if not call.is_finished:
                call.finish()
        self._child_calls = None
        if self._awaitables:
            await self.await_now(suppress_deadlock_warning=True)
        if await_reply_persistence and self._reply_appender.is_open and self.miniagents._persists():
            self._reply_appender.append(self._apersist_replies_so_far())

    async def _apersist_replies_so_far(self) -> AsyncIterator[Message]:
        """An empty reply item that holds the sequence open until the replies before it are persisted."""
        pieces = list(self._reply_appender._sequence._out.pieces)
        messages = [await piece for piece in pieces if not isinstance(piece, BaseException)]
        await self.miniagents.apersist_messages(messages)
        for _ in ():
            yield _
