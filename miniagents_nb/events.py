"""Observer API: what happens to agent calls and their messages, for views, tracing and tests.

Subscribe with `MiniAgents.subscribe(observer)`; an observer is a plain function called synchronously with each
event, in the task where the event happens, so it must be quick (record, schedule, never block). Nothing is built
or dispatched while nobody subscribes.

Tokens and resolved messages are not events of their own: `MessageReplied.message_promise` is a replayable promise,
so an observer that wants the tokens iterates it (from its first token, whenever it starts) and awaits it for the
final message. That keeps the per-token path free of any dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miniagents_nb.agents import MiniAgent
    from miniagents_nb.messages import MessagePromise, MessageSequencePromise

__all__ = [
    "AgentCallCancelled",
    "AgentCallEvent",
    "AgentCallFailed",
    "AgentCallFinished",
    "AgentCallQueued",
    "AgentCallStarted",
    "MessageReplied",
    "MiniAgentsEvent",
    "Observer",
]


@dataclass(frozen=True)
class MiniAgentsEvent:
    """Base of every event."""


@dataclass(frozen=True)
class AgentCallEvent(MiniAgentsEvent):
    """Something happened to one agent call.

    `call_id` numbers the calls of one `MiniAgents` context in creation order (deterministic, so views can show
    it); `caller_call_id` is the call whose agent made this call, or None at the top level.
    """

    call_id: int
    agent: MiniAgent
    caller_call_id: int | None


@dataclass(frozen=True)
class AgentCallQueued(AgentCallEvent):
    """The call exists; its agent has not started yet (it starts at the next task switch, or when consumed)."""

    reply_sequence: MessageSequencePromise = field(repr=False)
    input_sequence: MessageSequencePromise = field(repr=False)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentCallStarted(AgentCallEvent):
    """The agent function began running."""


@dataclass(frozen=True)
class AgentCallFinished(AgentCallEvent):
    """The agent function returned (its reply sequence may still wait for nested replies)."""


@dataclass(frozen=True)
class AgentCallFailed(AgentCallEvent):
    """The agent function raised; the error is also delivered in its reply sequence, at its position."""

    error: BaseException


@dataclass(frozen=True)
class AgentCallCancelled(AgentCallEvent):
    """The agent's task was cancelled (e.g. a kernel interrupt)."""


@dataclass(frozen=True)
class MessageReplied(MiniAgentsEvent):
    """The agent of call `call_id` replied with this message (possibly still streaming its tokens)."""

    call_id: int
    message_promise: MessagePromise = field(repr=False)


Observer = Callable[[MiniAgentsEvent], None]
"""`def observer(event) -> None`, called synchronously; exceptions are logged and never break the agents."""
