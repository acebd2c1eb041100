"""What `MiniAgents(record_to=...)` accepts: a `RunRecorder`, or a path that the registered opener turns into one.

The agent core records nothing itself and knows no store: a recorder (`miniagents_nb.runs.RunStore` is the one this
package ships) gets a `Recording` for each activation of a context, and the recording watches the context through
the public observation API like any other observer. A path is resolved by the opener the store layer registers
when it is imported (`register_path_recorder`): the dependency points downward, from the store to this protocol,
and `import miniagents_nb` imports the store layer, so a path works wherever `MiniAgents` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, Union, runtime_checkable

from miniagents_nb.agents.events import AgentCallStatus, MiniAgentsEvent, ObservedCall
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.messages import MessagePromise

__all__ = ["PlainRecording", "RecordTarget", "Recording", "RunRecorder", "recorder_for", "register_path_recorder"]


class Recording(Protocol):
    """One activation of a context being recorded: it observes the events and is closed when the context ends.

    A recording whose `observe` handles everything it could raise itself may say so with a class attribute
    `never_raises = True`: while it is the only observer of its context, the context then calls it straight
    (no dispatch loop, no guard around it), the cheapest way to deliver an event.
    """

    def observe(self, event: MiniAgentsEvent) -> None:
        """The observer (`MiniAgents.subscribe`): quick, never blocking, never raising."""

    def close(self) -> None:
        """The context ended (every agent is done): finish what is open and hand it to the store, without waiting."""


@runtime_checkable
class PlainRecording(Recording, Protocol):
    """A recording that takes the events of calls as plain arguments: no event object is built for it.

    While such a recording (it also says `never_raises = True`) is the only observer of its context, every call
    of that context tells it what happens by calling these methods, in the order the events would have come, with
    the same values the events would have carried (`call`, `at`, ...). As soon as any other observer subscribes
    (to this context or to one it is nested in), the context goes back to building events and calling `observe`
    with them, so the methods and `observe` must note the same facts. Events of other types always go to
    `observe`. A run store is the one observer that watches every call of every run: this saves it building six
    objects per call.
    """

    never_raises: bool

    def call_queued(self, call: ObservedCall, at: float) -> None:
        """What `AgentCallQueued(call, at)` says."""

    def call_started(self, call: ObservedCall, at: float) -> None:
        """What `AgentCallStarted(call, at)` says."""

    def message_replied(self, call: ObservedCall, at: float, message_promise: MessagePromise) -> None:
        """What `MessageReplied(call, at, message_promise)` says."""

    def call_ended(self, call: ObservedCall, at: float, status: AgentCallStatus, error: BaseException | None) -> None:
        """What `AgentCallFinished`, `AgentCallFailed` (with its `error`) or `AgentCallCancelled` says (`status`:
        `FINISHED`, `FAILED` or `CANCELLED`)."""


@runtime_checkable
class RunRecorder(Protocol):
    """Something that records the runs of a context (`MiniAgents(record_to=recorder)`)."""

    def open_recording(self, miniagents: Any) -> Recording:
        """A recording of one activation of `miniagents` (called when the context is activated)."""


RecordTarget = Union[RunRecorder, str, "os.PathLike[str]"]
"""What `record_to=` accepts."""

_path_recorders: list[Callable[[str], RunRecorder]] = []


def register_path_recorder(opener: Callable[[str], RunRecorder]) -> None:
    """Let `record_to=` take a path: `opener(path)` gives the recorder of that file (the last registration wins)."""
    _path_recorders.append(opener)


def recorder_for(target: RecordTarget | None) -> RunRecorder | None:
    """The recorder `record_to=target` means (None: no recording)."""
    if target is None:
        return None
    if isinstance(target, RunRecorder):
        return target
    if isinstance(target, (str, os.PathLike)):
        if not _path_recorders:
            raise InvalidArgumentsError(
                "`record_to=` got a path but no run store is available: import miniagents_nb.runs first."
            )
        return _path_recorders[-1](os.fspath(target))
    raise InvalidArgumentsError(
        f"`record_to=` takes a path or a run store (e.g. `miniagents_nb.runs.RunStore(path)`), "
        f"got {type(target).__name__}."
    )
