"""The observation API: what happens to agent calls and their messages, for views, recorders, exporters and tests.

Subscribe with `MiniAgents.subscribe(observer)`; an observer is a plain function called synchronously with each
event, in the task where the event happens, so it must be quick (record, schedule, never block). Nothing is built
or dispatched while nobody subscribes.

Every event names its `call` (an `AgentCall`, read through `ObservedCall`, the rest of the API: agent, parent, kwargs,
input and reply sequence promises, status, timestamps, `cancel()`) and carries `at`, the `time.monotonic()` moment it
happened (`wall_clock(at)` turns it into epoch seconds). Tokens and resolved messages are not events of their own:
`MessageReplied.message_promise` is a replayable promise, so an observer follows its tokens with a
`miniagents_nb.promising.StreamCursor` (or iterates it) and reads the final message when it is there. That keeps
the per-token path free of any dispatch.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from miniagents_nb.agents.definition import AgentDefinition
from miniagents_nb.messages import MessagePromise, MessageSequencePromise, MessagingContext

__all__ = [
    "AgentCallCancelled",
    "AgentCallEvent",
    "AgentCallFailed",
    "AgentCallFinished",
    "AgentCallQueued",
    "AgentCallStarted",
    "AgentCallStatus",
    "MessageReplied",
    "MiniAgentsEvent",
    "ObservedCall",
    "Observer",
    "wall_clock",
]

_WALL_MINUS_MONOTONIC = time.time() - time.monotonic()


def wall_clock(at: float) -> float:
    """Epoch seconds (as `time.time()` gives) for an event's monotonic `at`."""
    return at + _WALL_MINUS_MONOTONIC


class AgentCallStatus(str, enum.Enum):
    """Where a call is in its life; the last three are final."""

    QUEUED = "queued"
    """The call exists; its agent starts at the next task switch (or when its replies are first consumed)."""
    RUNNING = "running"
    FINISHED = "finished"
    """The agent function returned (its reply sequence may still wait for nested replies)."""
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Whether the agent function has ended."""
        return self in _FINAL


_FINAL = frozenset({AgentCallStatus.FINISHED, AgentCallStatus.FAILED, AgentCallStatus.CANCELLED})


class ObservedCall(Protocol):
    """What an observer may read of a call, and the one thing it may do (`cancel()`).

    `AgentCall` is the call every event of this package carries; the protocol is what observers (views,
    recorders, exporters) are written against, so a call recorded earlier or run elsewhere can stand in for it.
    """

    @property
    def agent(self) -> AgentDefinition: ...
    @property
    def call_id(self) -> int | None:
        """The call's number in its context (None while nobody observes the context)."""

    @property
    def parent(self) -> ObservedCall | None:
        """The call whose agent made this one (None at the top level)."""

    @property
    def miniagents(self) -> MessagingContext:
        """The context the call was made in (its `MiniAgents`: call ids are numbered per context)."""

    @property
    def kwargs(self) -> Mapping[str, Any]: ...
    @property
    def input_sequence_promise(self) -> MessageSequencePromise: ...
    @property
    def reply_sequence_promise(self) -> MessageSequencePromise: ...
    @property
    def status(self) -> AgentCallStatus: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def queued_at(self) -> float:
        """`time.monotonic()` when the call was made (the other two: when its agent started and ended)."""

    @property
    def started_at(self) -> float | None: ...
    @property
    def ended_at(self) -> float | None: ...
    def cancel(self) -> bool:
        """Cancel the call's agent (running or not started yet); False if it had already ended."""


@dataclass(frozen=True, slots=True)
class MiniAgentsEvent:
    """Base of every event: which call it is about, and when it happened."""

    call: ObservedCall = field(repr=False)
    at: float = field(repr=False)
    """`time.monotonic()` when it happened."""

    @property
    def call_id(self) -> int:
        """The call's number in its `MiniAgents` context (creation order, deterministic: views can show it)."""
        call_id = self.call.call_id
        assert call_id is not None  # observed calls are always numbered
        return call_id

    @property
    def agent(self) -> AgentDefinition:
        """The agent of the call."""
        return self.call.agent

    @property
    def caller_call_id(self) -> int | None:
        """The number of the call whose agent made this call, or None at the top level."""
        parent = self.call.parent
        return None if parent is None else parent.call_id


@dataclass(frozen=True, slots=True)
class AgentCallEvent(MiniAgentsEvent):
    """Something happened to one agent call."""


@dataclass(frozen=True, slots=True)
class AgentCallQueued(AgentCallEvent):
    """The call exists; its agent has not started yet (it starts at the next task switch, or when consumed)."""

    @property
    def reply_sequence(self) -> MessageSequencePromise:
        """The call's replies (reading them does not finish the call's input)."""
        return self.call.reply_sequence_promise

    @property
    def input_sequence(self) -> MessageSequencePromise:
        """The call's input."""
        return self.call.input_sequence_promise

    @property
    def kwargs(self) -> Mapping[str, Any]:
        """The call's own keyword arguments."""
        return self.call.kwargs


@dataclass(frozen=True, slots=True)
class AgentCallStarted(AgentCallEvent):
    """The agent function began running."""


@dataclass(frozen=True, slots=True)
class AgentCallFinished(AgentCallEvent):
    """The agent function returned (its reply sequence may still wait for nested replies)."""


@dataclass(frozen=True, slots=True)
class AgentCallFailed(AgentCallEvent):
    """The agent function raised; the error is also delivered in its reply sequence, at its position."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class AgentCallCancelled(AgentCallEvent):
    """The agent's task was cancelled (e.g. a kernel interrupt), or the call was cancelled before it started."""


@dataclass(frozen=True, slots=True)
class MessageReplied(MiniAgentsEvent):
    """The call's agent replied with this message (possibly still streaming its tokens)."""

    message_promise: MessagePromise = field(repr=False)


Observer = Callable[[MiniAgentsEvent], None]
"""`def observer(event) -> None`, called synchronously; whatever it raises (a `CancelledError` too, anything short
of `KeyboardInterrupt` and `SystemExit`) is logged and never breaks the agents."""
