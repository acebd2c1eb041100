"""`InteractionContext`: what an agent function gets as `ctx`, and the agent trace (who called whom).

The context of the agent whose code runs now is a context variable: `InteractionContext.get_current()` (or
`current_interaction()`, which gives None outside agents) reads it, in any task the agent started.
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import AsyncIterator, Awaitable
from contextvars import ContextVar
from typing import Any, Protocol

from miniagents_nb.agents.context import MiniAgents
from miniagents_nb.agents.definition import AgentDefinition
from miniagents_nb.agents.events import ObservedCall
from miniagents_nb.errors import NoActiveContextError
from miniagents_nb.messages import Message, MessageSequenceAppender, MessageSequencePromise, MessageType

__all__ = ["InteractionContext", "current_interaction", "display_trace", "get_current_agent_trace"]

_current_interaction: ContextVar[InteractionContext | None] = ContextVar(
    "miniagents_nb_current_interaction", default=None
)


def current_interaction() -> InteractionContext | None:
    """The context of the agent whose code runs now, or None outside agents."""
    return _current_interaction.get()


def display_trace(trace: list[AgentDefinition]) -> str:
    """`INNER <- OUTER` for a list of agents, innermost first."""
    return " <- ".join(agent.alias for agent in trace)


def get_current_agent_trace() -> list[AgentDefinition]:
    """The agents of the call chain running now, innermost first (empty outside agents)."""
    ctx = _current_interaction.get()
    return [] if ctx is None else ctx.get_agent_trace()


class _ChildCall(Protocol):
    """An `AgentCall` its agent's context finishes (the call module sits above this one)."""

    @property
    def is_finished(self) -> bool: ...
    def finish(self) -> object: ...


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
        this_agent: AgentDefinition,
        message_promises: MessageSequencePromise,
        reply_streamer: MessageSequenceAppender,
        parent: InteractionContext | None = None,
        call: ObservedCall | None = None,
        miniagents: MiniAgents | None = None,
    ) -> None:
        self.this_agent = this_agent
        self._call = call
        self.message_promises = message_promises
        self.miniagents = MiniAgents.get_current() if miniagents is None else miniagents
        self.parent = parent
        self._reply_appender = reply_streamer
        self._awaitables: list[Awaitable[Any]] | None = None  # both created on demand
        self._child_calls: list[_ChildCall] | None = None

    @property
    def call(self) -> ObservedCall | None:
        """The agent call this context runs (None only for contexts made by hand, e.g. in tests)."""
        return self._call

    @classmethod
    def get_current(cls) -> InteractionContext:
        """The context of the agent whose code is running now."""
        ctx = _current_interaction.get()
        if ctx is None:
            raise NoActiveContextError(
                "No InteractionContext is currently active: this only works inside an agent function."
            )
        return ctx

    def get_agent_trace(self) -> list[AgentDefinition]:
        """This agent, its caller, its caller's caller, ..."""
        trace: list[AgentDefinition] = []
        ctx: InteractionContext | None = self
        while ctx is not None:
            trace.append(ctx.this_agent)
            ctx = ctx.parent
        return trace

    def reply(self, messages: MessageType, out_of_order: bool = False) -> InteractionContext:
        """Reply (frozen now, flattened in the background, in order unless `out_of_order`)."""
        self._reply_appender.append(messages, out_of_order)
        return self

    def reply_out_of_order(self, messages: MessageType) -> InteractionContext:
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

    def _needs_finalizing(self, await_reply_persistence: bool) -> bool:
        """Whether `_afinalize` has anything to do (unfinished child calls, awaitables, replies to persist)."""
        return (
            self._child_calls is not None
            or bool(self._awaitables)
            or (await_reply_persistence and self._reply_appender.is_open and self.miniagents._persists())
        )

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
        messages = []
        for piece in list(self._reply_appender.pieces_so_far):
            if isinstance(piece, BaseException):
                continue
            try:
                messages.append(await piece)
            except Exception:  # a reply that failed: consumers meet its error at its own position, once
                continue
        await self.miniagents.apersist_messages(messages)
        for _ in ():
            yield _
