"""What the notebook knows about agent calls: one observer on the notebook-wide `MiniAgents` context.

Views need three things the engine does not keep: who sent each message (the first call that replied a promise),
the tree of calls (who triggered whom) with each call's status and timing, and which cell started each top-level
call (so that an interrupt cancels exactly the calls of the cell that was interrupted).

Memory stays bounded by what the user keeps: a call's record lives while the call runs, while its reply sequence
is alive, or while an ancestor's record lives; the tracker itself holds finished records only weakly. A record holds
the message promises its call replied, strongly, so what a view shows never depends on when the garbage collector
runs (the promise -> sender map is weak both ways, so that holding cannot keep a record alive forever).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from miniagents_nb.agents import MiniAgents
from miniagents_nb.events import (
    AgentCallCancelled,
    AgentCallEvent,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    MessageReplied,
    MiniAgentsEvent,
    ObservedCall,
)
from miniagents_nb.jupyter._streams import cancel_stream, original_promise, stream_finished
from miniagents_nb.messages import MessagePromise, MessageSequencePromise, MessagingContext
from miniagents_nb.messages.safe_text import safe_error_text

__all__ = ["ENDED", "CallRecord", "CallTracker", "current_cell"]

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ENDED = frozenset({DONE, FAILED, CANCELLED})

current_cell: ContextVar[int | None] = ContextVar("miniagents_nb_current_cell", default=None)
"""The serial number of the cell whose code (or whose background tasks) is running; set at `pre_run_cell`.

Tasks copy the context they are created in, so an agent call triggered from a task that a cell started is charged
to that cell, even when it happens while a later cell runs.
"""

Listener = Callable[["CallRecord"], None]

_PRUNE_STREAMING_AT = 64  # ended calls kept for their streaming messages are checked again past this many


class CallRecord:
    """One agent call as the views show it."""

    __slots__ = (
        "__weakref__",
        "agent_kwargs",
        "alias",
        "call",
        "call_id",
        "cancel_requested",
        "caller",
        "cell",
        "children",
        "ended_at",
        "error",
        "input_sequence",
        "key",
        "kwargs",
        "label",
        "message_times",
        "messages",
        "queued_at",
        "started_at",
        "status",
        "superseded",
        "traceback",
    )

    def __init__(
        self,
        key: tuple[int, int],
        label: str,
        alias: str,
        caller: CallRecord | None,
        cell: int | None,
        queued_at: float = 0.0,
    ) -> None:
        self.key = key
        self.call_id = key[1]
        self.label = label
        """Deterministic id for views: "3" for the notebook context, "2:3" for call 3 of the second nested one."""
        self.alias = alias
        self.caller = caller
        self.cell = cell
        self.children: list[CallRecord] = []
        self.status = QUEUED
        self.error: str | None = None
        self.traceback: str | None = None
        """The failure's traceback (formatted once, when the call failed)."""
        self.agent_kwargs: Mapping[str, Any] = {}
        self.kwargs: Mapping[str, Any] = {}
        """The agent's frozen arguments and the call's own (shown in the trace view's details)."""
        self.input_sequence: MessageSequencePromise | None = None
        self.queued_at = queued_at
        """`time.monotonic()` of the call's `AgentCallQueued` event (as are the other two)."""
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.messages: list[MessagePromise] = []
        self.message_times: list[float] = []
        """When each of `messages` was replied (the `MessageReplied` events' `at`)."""
        self.call: ObservedCall | None = None
        self.cancel_requested = False
        """Whether the notebook cancelled it (set before its task sees the `CancelledError`)."""
        self.superseded = False
        """Whether its cell was run again while it was still going (the views say so; see `mark_superseded`)."""

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds the agent function ran (so far, while it runs); None before it started."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else (time.monotonic() if now is None else now)
        return max(0.0, end - self.started_at)

    def subtree_end(self) -> float | None:
        """When the last call of this record's subtree ended (None while any of them has not)."""
        latest = self.ended_at
        for record in self.walk():
            if record.ended_at is None:
                return None
            latest = max(latest or record.ended_at, record.ended_at)
        return latest

    def root(self) -> CallRecord:
        record = self
        while record.caller is not None:
            record = record.caller
        return record

    def live_messages(self) -> list[MessagePromise]:
        return list(self.messages)

    def streaming(self) -> bool:
        """Whether a message this call replied is still streaming."""
        return any(not stream_finished(promise) for promise in self.live_messages())

    def walk(self) -> list[CallRecord]:
        """This record and every descendant, depth first, in call order."""
        found: list[CallRecord] = []
        todo = [self]
        while todo:
            record = todo.pop()
            found.append(record)
            todo.extend(reversed(record.children))
        return found


class CallTracker:
    """The observer: keeps `CallRecord`s up to date and tells listeners (the live views) what changed.

    Events may come from another thread (the sync facade runs `MiniAgents().run(...)` on a worker loop while the
    kernel thread waits for it), so the bookkeeping is guarded by a lock and listeners are expected to be
    thread-aware (views wake their own loop thread-safely).
    """

    def __init__(self, miniagents: MiniAgents) -> None:
        self.miniagents = miniagents
        self._lock = threading.RLock()
        self._context_serials: weakref.WeakKeyDictionary[MessagingContext, int] = weakref.WeakKeyDictionary()
        self._context_serials[miniagents] = 0
        self._next_context_serial = 1
        self._by_key: weakref.WeakValueDictionary[tuple[int, int], CallRecord] = weakref.WeakValueDictionary()
        self._active: dict[tuple[int, int], CallRecord] = {}
        # Calls that ended while messages they replied still stream (e.g. a token streamer pumped by the context).
        self._streaming: dict[tuple[int, int], CallRecord] = {}
        self._by_sequence: weakref.WeakKeyDictionary[MessageSequencePromise, CallRecord] = weakref.WeakKeyDictionary()
        self._senders: weakref.WeakKeyDictionary[MessagePromise, weakref.ref[CallRecord]] = weakref.WeakKeyDictionary()
        self._listeners: list[Listener] = []
        self.calls_seen = 0
        self.failures_seen = 0
        self.last_failure: str | None = None
        """`ALIAS: Error: message` of the latest failed call (`%miniagents` names it: no log line says it any more)."""
        self._cancelled_by_cell: dict[int | None, int] = {}

    # --- listening -----------------------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _changed(self, record: CallRecord) -> None:
        for listener in list(self._listeners):
            listener(record)

    # --- lookups -------------------------------------------------------------------------------------------------

    def record_of_sequence(self, sequence: MessageSequencePromise) -> CallRecord | None:
        with self._lock:
            return self._by_sequence.get(sequence)

    def sender_of(self, promise: MessagePromise) -> CallRecord | None:
        with self._lock:
            sender = self._senders.get(original_promise(promise))
            return sender() if sender is not None else None

    def active_records(self) -> list[CallRecord]:
        """The calls whose agent has not ended yet."""
        with self._lock:
            return sorted(self._active.values(), key=lambda record: record.key)

    def live_records(self) -> list[CallRecord]:
        """The active calls, and the ended ones whose replied messages still stream."""
        with self._lock:
            self._prune_streaming()
            return sorted([*self._active.values(), *self._streaming.values()], key=lambda record: record.key)

    def _prune_streaming(self) -> None:
        for key, record in list(self._streaming.items()):
            if not record.streaming():
                del self._streaming[key]

    # --- the observer --------------------------------------------------------------------------------------------

    def __call__(self, event: MiniAgentsEvent) -> None:
        with self._lock:
            if isinstance(event, MessageReplied):
                record = self._record_for(event.call_id, event)
                if record is None:
                    return
                promise = event.message_promise
                if promise not in self._senders:  # the first call that replied a promise is its sender
                    self._senders[promise] = weakref.ref(record)
                record.messages.append(promise)
                record.message_times.append(event.at)
            elif isinstance(event, AgentCallEvent):
                record = self._on_call_event(event)
                if record is None:
                    return
            else:
                return
        self._changed(record)

    def _context_of(self, event: MiniAgentsEvent) -> MessagingContext:
        """The context that numbered the event's call (call ids are per context)."""
        return event.call.miniagents

    def _serial_of(self, ctx: MessagingContext) -> int:
        serial = self._context_serials.get(ctx)
        if serial is None:
            serial = self._next_context_serial
            self._next_context_serial += 1
            self._context_serials[ctx] = serial
        return serial

    def _record_for(self, call_id: int, event: MiniAgentsEvent) -> CallRecord | None:
        return self._by_key.get((self._serial_of(self._context_of(event)), call_id))

    def _on_call_event(self, event: AgentCallEvent) -> CallRecord | None:
        if isinstance(event, AgentCallQueued):
            return self._on_queued(event)
        record = self._record_for(event.call_id, event)
        if record is None:
            return None
        if isinstance(event, AgentCallFinished) and record.cancel_requested:
            # Cancelled, but the agent swallowed the CancelledError (a token appender with `capture_errors` ends its
            # message with it and lets the function return): it still ended because it was cancelled.
            self._end(record, CANCELLED, at=event.at)
        elif isinstance(event, AgentCallStarted):
            record.status = RUNNING
            record.started_at = event.at
            if record.cancel_requested and record.call is not None:
                record.call.cancel()  # an interrupt came while it was still queued
        elif isinstance(event, AgentCallFinished):
            self._end(record, DONE, at=event.at)
        elif isinstance(event, AgentCallFailed):
            record.traceback = safe_error_text(event.error, with_traceback=True)
            self._end(record, FAILED, safe_error_text(event.error), at=event.at)
            self.failures_seen += 1
            self.last_failure = f"{record.alias}: {record.error}"
        elif isinstance(event, AgentCallCancelled):
            self._end(record, CANCELLED, at=event.at)
        return record

    def _on_queued(self, event: AgentCallQueued) -> CallRecord:
        serial = self._serial_of(self._context_of(event))
        key = (serial, event.call_id)
        caller = self._by_key.get((serial, event.caller_call_id)) if event.caller_call_id is not None else None
        label = str(event.call_id) if serial == 0 else f"{serial}:{event.call_id}"
        cell = caller.cell if caller is not None else current_cell.get()
        record = CallRecord(key, label, event.agent.alias, caller, cell, event.at)
        record.call = event.call
        record.agent_kwargs = event.agent.frozen_kwargs
        record.kwargs = event.kwargs
        record.input_sequence = event.input_sequence
        if caller is not None:
            caller.children.append(record)
        self._by_key[key] = record
        self._active[key] = record
        self._by_sequence[event.reply_sequence] = record
        self.calls_seen += 1
        return record

    def _end(self, record: CallRecord, status: str, error: str | None = None, at: float | None = None) -> None:
        if record.ended:
            return
        if status == CANCELLED and not record.cancel_requested:  # cancelled from elsewhere (the sync facade's loop)
            self._count_cancelled(record)
        record.status = status
        record.error = error
        record.ended_at = time.monotonic() if at is None else at
        record.call = None
        self._active.pop(record.key, None)
        if record.streaming():
            if len(self._streaming) >= _PRUNE_STREAMING_AT:
                self._prune_streaming()
            self._streaming[record.key] = record

    # --- cancelling ----------------------------------------------------------------------------------------------

    def cancel(self, records: list[CallRecord]) -> int:
        """Cancel these calls (deepest first) and the streams of the messages they replied; returns how many calls
        were cancelled. A call that has not started yet is cancelled when it starts."""
        cancelled = 0
        for record in sorted(records, key=_depth, reverse=True):
            if not record.ended:
                call = record.call
                first = not record.cancel_requested
                # marked first: a call that was still queued ends inside `cancel()` (it must not count twice);
                # one cancelled before is cancelled again (its agent may have swallowed the first one), not counted
                record.cancel_requested = True
                if call is None or call.cancel():
                    if first:
                        cancelled += 1
                        self._count_cancelled(record)
                elif first and not record.ended:
                    record.cancel_requested = False  # it could not be cancelled (it is ending by itself)
            for promise in record.live_messages():
                cancel_stream(promise)
        return cancelled

    def abandon(self) -> None:
        """The session goes away (`%unload_ext`) after cancelling every call: the events that would end them will not
        reach this observer any more, so they end here, as cancelled, and the views that follow them are told (a
        view must not say "running" for ever). Their messages still end on their own, as the cancellations run."""
        with self._lock:
            records = [record for record in self._active.values() if not record.ended]
            for record in records:
                record.cancel_requested = True  # (counted by `cancel` already)
                self._end(record, CANCELLED)
        for record in records:
            self._changed(record)

    def _count_cancelled(self, record: CallRecord) -> None:
        with self._lock:
            self._cancelled_by_cell[record.cell] = self._cancelled_by_cell.get(record.cell, 0) + 1

    def cancelled_in_cell(self, cell: int) -> int:
        """How many calls of this cell run were cancelled (by the notebook or on the sync facade's loop) since
        `reset_cancel_counts()`: the number an interrupted cell reports."""
        with self._lock:
            return self._cancelled_by_cell.get(cell, 0)

    def reset_cancel_counts(self) -> None:
        """Forget the counts of `cancelled_in_cell` (at each cell's start: only the running cell's count is read)."""
        with self._lock:
            self._cancelled_by_cell.clear()

    def mark_superseded(self, records: list[CallRecord]) -> None:
        """Mark these calls as belonging to an earlier run of a cell that runs again, and tell the views."""
        for record in records:
            if not record.superseded:
                record.superseded = True
                self._changed(record)

    def records_of_cell(self, cell: int) -> list[CallRecord]:
        """The live calls a cell started: its top-level calls and everything they triggered."""
        return [record for record in self.live_records() if record.root().cell == cell]


def _depth(record: CallRecord) -> int:
    depth = 0
    while record.caller is not None:
        record = record.caller
        depth += 1
    return depth
