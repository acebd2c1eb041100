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
from typing import Any, ClassVar, Protocol

from typing_extensions import Self

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
    "from_wall_clock",
    "wall_clock",
]

_WALL_MINUS_MONOTONIC = time.time() - time.monotonic()


def wall_clock(at: float) -> float:
    """Epoch seconds (as `time.time()` gives) for an event's monotonic `at`."""
    return at + _WALL_MINUS_MONOTONIC


def from_wall_clock(epoch: float) -> float:
    """The monotonic moment (as events carry) for epoch seconds: `wall_clock`'s inverse, for times taken elsewhere
    (another process or machine says when something happened there, in epoch seconds)."""
    return epoch - _WALL_MINUS_MONOTONIC


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


class MiniAgentsEvent(tuple[Any, ...]):
    """Base of every event: which call it is about, and when it happened.

    An event is an immutable tuple of its fields (`call`, `at`, then the event's own), read by name. Events are made
    per call and per replied message whenever someone observes, so they are tuples: the engine builds one with a
    single `tuple.__new__`, a fraction of what a frozen dataclass costs. Two events are equal when they are of the
    same class with the same fields.
    """

    __slots__ = ()

    _fields: ClassVar[tuple[str, ...]] = ("call", "at")
    __match_args__: ClassVar[tuple[str, ...]] = ("call", "at")

    def __new__(cls, call: ObservedCall, at: float) -> Self:
        return tuple.__new__(cls, (call, at))

    @property
    def call(self) -> ObservedCall:
        """The call the event is about."""
        return self[0]  # type: ignore[no-any-return]

    @property
    def at(self) -> float:
        """`time.monotonic()` when it happened."""
        return self[1]  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        own = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields[2:], self[2:], strict=True))
        return f"{type(self).__name__}({own})"  # the call and the time are left out: they are no one's business here

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), tuple(self))

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


class AgentCallEvent(MiniAgentsEvent):
    """Something happened to one agent call."""

    __slots__ = ()


class AgentCallQueued(AgentCallEvent):
    """The call exists; its agent has not started yet (it starts at the next task switch, or when consumed)."""

    __slots__ = ()

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


class AgentCallStarted(AgentCallEvent):
    """The agent function began running."""

    __slots__ = ()


class AgentCallFinished(AgentCallEvent):
    """The agent function returned (its reply sequence may still wait for nested replies)."""

    __slots__ = ()


class AgentCallFailed(AgentCallEvent):
    """The agent function raised; the error is also delivered in its reply sequence, at its position."""

    __slots__ = ()

    _fields = ("call", "at", "error")
    __match_args__ = ("call", "at", "error")

    def __new__(cls, call: ObservedCall, at: float, error: BaseException) -> Self:
        return tuple.__new__(cls, (call, at, error))

    @property
    def error(self) -> BaseException:
        """What the agent function raised."""
        return self[2]  # type: ignore[no-any-return]


class AgentCallCancelled(AgentCallEvent):
    """The agent's task was cancelled (e.g. a kernel interrupt), or the call was cancelled before it started."""

    __slots__ = ()


class MessageReplied(MiniAgentsEvent):
    """The call's agent replied with this message (possibly still streaming its tokens)."""

    __slots__ = ()

    _fields = ("call", "at", "message_promise")
    __match_args__ = ("call", "at", "message_promise")

    def __new__(cls, call: ObservedCall, at: float, message_promise: MessagePromise) -> Self:
        return tuple.__new__(cls, (call, at, message_promise))

    @property
    def message_promise(self) -> MessagePromise:
        """The replied message's promise (replayable: follow its tokens, then read the message)."""
        return self[2]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return "MessageReplied()"  # a promise's repr is a sentence, not a value


Observer = Callable[[MiniAgentsEvent], None]
"""`def observer(event) -> None`, called synchronously; whatever it raises (a `CancelledError` too, anything short
of `KeyboardInterrupt` and `SystemExit`) is logged and never breaks the agents."""
