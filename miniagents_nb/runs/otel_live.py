"""A context's calls as OpenTelemetry spans while they run: an observer of the public observation API
(`MiniAgents.subscribe`, `miniagents_nb.events`), giving the spans `miniagents_nb.runs.otel.export_run` gives for the
same run once recorded (names, parents and attributes from `miniagents_nb.runs.otel_attributes`).

    export = export_live(miniagents, tracer_provider=provider)   # or: with export_live(...):
    ...                                                          # spans start and end as calls do
    export.close()                                               # unsubscribe; what is still open ends now

A call's span starts when its agent starts (timed from when the call was queued; a call cancelled before it started
gets its span when cancelled), under its caller's span, and ends when the call and everything it replied is done:
its agent ended, its own replied messages have ended (an LLM's reply carries its request, which becomes the `chat`
span) and its nested calls' spans have ended (with `include_content=True`, also its input and reply sequences, whose
messages it reports). Times are the events' own (`wall_clock(at)`), not when the observer got to them. What is left
to wait for when a call ends (a stream that outlives its agent, a sequence still being flattened) is looked at again
on a timer of the loop every `poll_interval_s`, never per token.

The observer only notes plain facts, starts and ends spans; it never starts a promise, never blocks, and never
raises into the agents: a failure (of a span processor, say) is logged once as a warning (logger
`miniagents_nb.runs`) and the run goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from miniagents_nb.agents.events import (
    AgentCallCancelled,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    AgentCallStatus,
    MessageReplied,
    MiniAgentsEvent,
    ObservedCall,
    wall_clock,
)
from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise
from miniagents_nb.runs.entries import entry_of
from miniagents_nb.runs.otel_attributes import (
    ToolCallFacts,
    end_call_span,
    epoch_ns,
    export_chat_span,
    live_llm_request,
    start_call_span,
    tool_call_of,
    tracer_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.trace import Span, TracerProvider

    from miniagents_nb.agents import MiniAgents

__all__ = ["DEFAULT_POLL_INTERVAL_S", "LiveExport", "export_live"]

DEFAULT_POLL_INTERVAL_S = 0.05
"""How often what an ended call still waits for (a stream, a sequence) is looked at again."""

_LOGGER = logging.getLogger("miniagents_nb.runs")
_ENDED = {
    AgentCallFinished: AgentCallStatus.FINISHED,
    AgentCallFailed: AgentCallStatus.FAILED,
    AgentCallCancelled: AgentCallStatus.CANCELLED,
}


class _Call:
    """What the export knows of one call it watches."""

    __slots__ = (
        "call",
        "ended_at",
        "error",
        "latest",
        "open_children",
        "parent",
        "queued_at",
        "replied",
        "span",
        "started_at",
        "status",
        "tool",
    )

    def __init__(self, call: ObservedCall, parent: _Call | None, queued_at: float) -> None:
        self.call = call
        self.parent = parent
        self.queued_at = queued_at
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.status: AgentCallStatus | None = None
        self.error: BaseException | None = None
        self.span: Span | None = None
        self.tool: ToolCallFacts | None = None
        self.replied: list[tuple[MessagePromise, list[float]]] = []
        """The call's own replies, each with when it was seen ended (empty until then)."""
        self.open_children = 0
        self.latest = queued_at
        """The latest end among the call's own and its nested calls'."""

    @property
    def depth(self) -> int:
        depth, parent = 0, self.parent
        while parent is not None:
            depth, parent = depth + 1, parent.parent
        return depth


def _entries(sequence: MessageSequencePromise) -> list[Any]:
    """A sequence's messages and failures so far (what a recorded call list holds; nothing is started)."""
    entries = []
    for piece in sequence.pieces_so_far:
        entry = piece if isinstance(piece, BaseException) else entry_of(piece.original_promise, final=True)
        if entry is not None:
            entries.append(entry)
    return entries


class LiveExport:
    """Exports the calls it observes as spans (see the module docstring): `observe` is the observer; `export_live`
    subscribes one to a context. `close()` (or the end of a `with` block) unsubscribes it and ends every span still
    open, at that moment, with the call's status then."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        include_content: bool = False,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        self.tracer = tracer_for(tracer_provider)
        self.include_content = include_content
        self.poll_interval_s = poll_interval_s
        self.closed = False
        self.fault: BaseException | None = None
        """The first failure of the export (logged once), if any."""
        self._calls: dict[int, _Call] = {}
        """The calls watched and not exported yet, by `id()` of the call (call ids are numbered per context)."""
        self._waiting: dict[int, _Call] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # --- the observer -------------------------------------------------------------------------------------------

    def observe(self, event: MiniAgentsEvent) -> None:
        """Note one event (an observer for `MiniAgents.subscribe`); never raises."""
        if self.closed:
            return
        try:
            kind = type(event)
            call = event.call
            if kind is AgentCallQueued:
                self._queued(call, event.at)
                return
            state = self._calls.get(id(call))
            if state is None:  # queued before the export began
                return
            if kind is AgentCallStarted:
                state.started_at = event.at
                self._start(state)
            elif kind is MessageReplied:
                assert isinstance(event, MessageReplied)
                state.replied.append((event.message_promise.original_promise, []))
            elif kind in _ENDED:
                state.ended_at = event.at
                state.latest = max(state.latest, event.at)
                state.status = _ENDED[kind]
                state.error = event.error if isinstance(event, AgentCallFailed) else None
                self._start(state)
                self._try_end(state, event.at)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # an exporter must never break the agents it watches
            self._failed(error)

    def _failed(self, error: BaseException) -> None:
        if self.fault is None:
            self.fault = error
            _LOGGER.warning("The OpenTelemetry export of a run failed (the agents go on): %r", error, exc_info=error)
        else:
            _LOGGER.debug("The OpenTelemetry export failed again", exc_info=error)

    def _queued(self, call: ObservedCall, at: float) -> None:
        parent_call = call.parent
        parent = None if parent_call is None else self._calls.get(id(parent_call))
        if parent is not None:
            parent.open_children += 1
        self._calls[id(call)] = _Call(call, parent, at)

    def _start(self, state: _Call) -> None:
        if state.span is not None:
            return
        parent = state.parent
        if parent is not None and parent.span is None:  # (a caller's span starts before its callees')
            self._start(parent)
        call = state.call
        inputs = call.input_sequence_promise.pieces_so_far
        state.tool = tool_call_of(inputs[0]) if inputs else None
        agent = call.agent
        state.span = start_call_span(
            self.tracer,
            alias=agent.alias,
            description=agent.description,
            call_id=call.call_id,
            tool=state.tool,
            parent=None if parent is None else parent.span,
            start_ns=epoch_ns(wall_clock(state.queued_at)),
        )

    # --- ending spans -------------------------------------------------------------------------------------------

    def _ready(self, state: _Call, now: float) -> bool:
        """Whether everything the call's span waits for is done (replies that ended are timed `now`)."""
        if state.ended_at is None or state.open_children:
            return False
        ready = True
        for promise, ended in state.replied:
            if not ended:
                if promise.producer_ended:
                    ended.append(now)
                    state.latest = max(state.latest, now)
                else:
                    ready = False
        if ready and self.include_content:
            call = state.call
            ready = call.input_sequence_promise.producer_ended and call.reply_sequence_promise.producer_ended
        return ready

    def _try_end(self, state: _Call, now: float) -> None:
        if not self._ready(state, now):
            if state.ended_at is not None and not state.open_children:
                self._wait(state)
            return
        self._end(state, now)
        parent = state.parent
        if parent is not None:
            self._try_end(parent, now)

    def _end(self, state: _Call, now: float) -> None:
        """Export the call's chat spans and end its span (`now` for what has not ended: the export is closing)."""
        call = state.call
        self._calls.pop(id(call), None)
        self._waiting.pop(id(call), None)
        self._start(state)
        span = state.span
        assert span is not None
        inputs = _entries(call.input_sequence_promise) if self.include_content else []
        start_ns = epoch_ns(wall_clock(state.started_at or state.queued_at))
        for promise, ended in state.replied:
            message = entry_of(promise, final=True)
            if not isinstance(message, Message):
                continue
            request = live_llm_request(message, {**call.agent.frozen_kwargs, **call.kwargs})
            if request is not None:
                export_chat_span(
                    self.tracer,
                    span,
                    request,
                    content=(inputs, str(message)) if self.include_content else None,
                    start_ns=start_ns,
                    end_ns=epoch_ns(wall_clock(ended[0] if ended else now)),
                )
        end = state.latest if state.ended_at is not None else max(state.latest, now)
        end_call_span(
            span,
            status=state.status or call.status,
            error=state.error,
            tool=state.tool,
            content=(inputs, _entries(call.reply_sequence_promise)) if self.include_content else None,
            end_ns=epoch_ns(wall_clock(end)),
        )
        parent = state.parent
        if parent is not None:
            parent.open_children -= 1
            parent.latest = max(parent.latest, end)

    def _wait(self, state: _Call) -> None:
        self._waiting[id(state.call)] = state
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # events outside any loop: what is left ends at `close()`
                return
            self._handle = loop.call_later(self.poll_interval_s, self._poll)

    def _poll(self) -> None:
        self._handle = None
        if self.closed:
            return
        try:
            now = time.monotonic()
            for state in list(self._waiting.values()):
                if id(state.call) in self._waiting:
                    self._try_end(state, now)
            if self._waiting:
                self._handle = asyncio.get_running_loop().call_later(self.poll_interval_s, self._poll)
        except Exception as error:
            self._failed(error)

    # --- the subscription ---------------------------------------------------------------------------------------

    def subscribe(self, miniagents: MiniAgents) -> Self:
        """Observe `miniagents` (and the contexts nested in it) until `close()`."""
        unsubscribe = miniagents.subscribe(self.observe)
        previous, self._unsubscribe = self._unsubscribe, unsubscribe
        if previous is not None:
            previous()
        return self

    def close(self) -> None:
        """Unsubscribe, and end every span still open now (innermost first), with each call's status now."""
        if self.closed:
            return
        self.closed = True
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        now = time.monotonic()
        for state in sorted(self._calls.values(), key=lambda state: -state.depth):
            try:
                self._end(state, now)
            except Exception as error:
                self._failed(error)
        self._calls.clear()
        self._waiting.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def export_live(
    miniagents: MiniAgents,
    *,
    tracer_provider: TracerProvider | None = None,
    include_content: bool = False,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
) -> LiveExport:
    """Export the calls of `miniagents` (and of contexts nested in it) as spans while they run, through
    `tracer_provider` (the global one by default), until the returned `LiveExport` is closed (see the module
    docstring)."""
    return LiveExport(
        tracer_provider=tracer_provider, include_content=include_content, poll_interval_s=poll_interval_s
    ).subscribe(miniagents)
