"""The loop side of recording: one `StoreRecording` per activation of a context, an observer of its events.

The observer notes each event's facts as plain values in flat lists (`rows.Facts`), and reads a whole reply from
its promise's `known_beforehand` (no resolution). A timer callback on the loop (`loop.call_later`: no task,
nothing the context waits for) hands the facts to the store's writer thread every `token_sample_interval_s` while
anything happens, and samples the streams still open by reading how many pieces they have (the length of
`pieces_so_far`, a public read that starts nothing and costs the producer nothing). A token's arrival time is the
sample that first saw it, so its precision is the interval; the cost is one look per open stream per interval,
never anything per token. Call lists (input and replies) are taken when their sequences have ended.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

from miniagents_nb.agents.events import (
    AgentCallCancelled,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    AgentCallStatus,
    MessageReplied,
    MiniAgentsEvent,
    wall_clock,
)
from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise
from miniagents_nb.runs.entries import MESSAGE_TYPES, Stream, entry_of, is_message, list_entries
from miniagents_nb.runs.rows import Facts, RunRef
from miniagents_nb.runs.run_requests import RecordingStore, RunHandle, RunRequest, requested_run
from miniagents_nb.runs.writer import StoreWriter

__all__ = ["StoreRecording"]

_monotonic = time.monotonic
_SLOW_FACTOR = 20
"""Only call lists left to wait for: look 20 times less often."""


class StoreRecording:
    """Records one activation of a context into a `RunStore` (see the module docstring); a `PlainRecording`, so
    while it is its context's only observer, no event object is built for it."""

    never_raises = True
    """`observe` handles its own failures: the context may call it straight (see `Recording`)."""

    def __init__(self, store: RecordingStore, miniagents: Any) -> None:
        self.store = store
        self.writer: StoreWriter = store.writer
        self.miniagents = miniagents
        self._context = contextvars.copy_context()  # hash keys are computed under the context's settings
        self._interval = store.token_sample_interval_s
        self._streams: list[Stream] = []
        self._lists: list[tuple[RunRef, int, str, MessageSequencePromise]] = []
        self._facts = Facts(self._context)
        self._calls: dict[int, list[Any]] = {}
        """Per observed call: `[its run, the run's key, how many messages it replied so far]`."""
        self._streaming: set[int] = set()
        """Calls that replied a stream and have not ended: their reply lists are always compared by the writer."""
        self._run: RunRef | None = None
        self._next_run: tuple[str | None, str | None, str | None] = (None, None, None)
        self._request_runs: dict[RunRequest, RunRef] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._slow = False
        self.closed = False
        self._no_input: MessageSequencePromise | None = None
        """The last input sequence seen ended and empty (calls made with no messages share one)."""
        self._inputs_noted: set[int] = set()
        """Calls whose input list was noted when they started (as it nearly always is): a run cut by a kill keeps
        what its calls were asked, and their end notes no input list."""

    # --- the observer -------------------------------------------------------------------------------------------

    def observe(self, event: MiniAgentsEvent) -> None:
        """The events as objects (while other observers watch the context too): noted by the same methods the
        context calls with plain arguments while this is its only observer (`PlainRecording`); events of other
        types (newer layers) are ignored."""
        kind = type(event)
        if kind is MessageReplied:
            self.message_replied(*event)
        elif kind is AgentCallStarted:
            self.call_started(*event)
        elif kind is AgentCallFinished:
            self.call_ended(event[0], event[1], AgentCallStatus.FINISHED, None)
        elif kind is AgentCallQueued:
            self.call_queued(*event)
        elif kind is AgentCallFailed:
            self.call_ended(event[0], event[1], AgentCallStatus.FAILED, event[2])
        elif kind is AgentCallCancelled:
            self.call_ended(event[0], event[1], AgentCallStatus.CANCELLED, None)

    # Each method notes the facts as plain values (neither the call nor anything of it is kept alive) and makes sure
    # a tick is due, which hands them to the writer; streams still open and lists still filling are looked at
    # again at each tick. Once closed, no call is known any more (`call_queued` notes no new one), and after a
    # writer fault what is noted is dropped at the next tick. Each handles its own failures (`never_raises`).

    def message_replied(self, call: Any, at: float, message_promise: MessagePromise) -> None:
        try:
            call_id = call.call_id
            noted = self._calls.get(call_id)
            if noted is None:  # queued before this recording began
                return
            if self._handle is None:
                self._schedule(self._interval)
            position = noted[2]
            noted[2] = position + 1
            known = message_promise.known_beforehand  # (an errors-as-messages view never wraps a whole message)
            if type(known) in MESSAGE_TYPES or is_message(known):  # a whole message (most replies): recorded now,
                # nothing to follow
                self._facts.whole.extend((noted[1], call_id, position, known, at))
            else:
                self._stream(noted[0], call_id, position, message_promise.original_promise, at)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # a recorder must never break the agents
            self.miniagents.log_error_once(error, "THE RUN RECORDER FAILED")

    def call_started(self, call: Any, at: float) -> None:
        try:
            call_id = call.call_id
            noted = self._calls.get(call_id)
            if noted is not None:
                if self._handle is None:
                    self._schedule(self._interval)
                facts = self._facts
                facts.started.extend((noted[1], call_id, at))
                inputs = call.input_sequence_promise
                if inputs is not self._no_input and inputs.producer_ended:  # (else it is noted when the call ends)
                    if not inputs.pieces_so_far:
                        self._no_input = inputs  # ended and empty: it stays so (an empty list is stored as none)
                    elif (entries := list_entries(inputs, final=False)) is not None:
                        facts.lists.extend((noted[1], call_id, "input", entries))
                        self._inputs_noted.add(call_id)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self.miniagents.log_error_once(error, "THE RUN RECORDER FAILED")

    def call_ended(self, call: Any, at: float, status: AgentCallStatus, error: BaseException | None) -> None:
        try:
            call_id = call.call_id
            noted = self._calls.get(call_id)
            if noted is None:
                return
            inputs_noted = call_id in self._inputs_noted
            if inputs_noted:
                self._inputs_noted.discard(call_id)
            if status is AgentCallStatus.FINISHED:
                replies = call.reply_sequence_promise
                own = noted[2]
                if (
                    (inputs_noted or call.input_sequence_promise is self._no_input)
                    and call_id not in self._streaming
                    and replies.producer_ended
                    and len(replies.pieces_so_far) == own
                ):  # (most calls) no input or one noted at the start, and the reply list is just the call's own
                    # replies, noted already, in order: the store needs no list for them, so none is built
                    # (`own_list` tells the writer)
                    if self._handle is None:
                        self._schedule(self._interval)
                    self._facts.ended.extend((noted[1], call_id, "finished", at, None, own > 0))
                    return
            self._ended(call, noted, at, status, error, inputs_noted)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as raised:
            self.miniagents.log_error_once(raised, "THE RUN RECORDER FAILED")

    def call_queued(self, call: Any, at: float) -> None:
        try:
            parent = call.parent
            caller = None if parent is None else self._calls.get(parent_id := parent.call_id)
            if caller is None:  # a top-level call (or a recording that is closed): its run is looked up
                self._queued(call, at)
                return
            if self._handle is None:
                self._schedule(self._interval)
            call_id = call.call_id
            key = caller[1]
            self._calls[call_id] = [caller[0], key, 0]  # (a call belongs to its caller's run)
            self._facts.calls.extend((key, call_id, parent_id, call.agent, call.kwargs, at))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self.miniagents.log_error_once(error, "THE RUN RECORDER FAILED")

    def _ensure_tick(self) -> None:
        if self._handle is None or self._slow:
            self._schedule(self._interval)

    def _schedule(self, delay: float, slow: bool = False) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self.writer.tick_due = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # events outside any loop (a context activated by hand): look again at the end
            return
        self._slow = slow
        self._handle = loop.call_later(delay, self._tick)
        self.writer.tick_due = _monotonic() + delay  # (past it, the loop is busy: the writer leaves it the GIL)

    # --- the tick -----------------------------------------------------------------------------------------------

    def _tick(self) -> None:
        self._handle = None
        self.writer.tick_due = None
        try:
            self._take(final=False)
        except Exception as error:  # a recorder must never break the agents
            self.miniagents.log_error_once(error, "THE RUN RECORDER FAILED")
            self._drop()
            return
        if self._streams:
            self._schedule(self._interval)
        elif self._lists:
            self._schedule(self._interval * _SLOW_FACTOR, slow=True)

    def _drop(self) -> None:
        self._streams.clear()
        self._lists.clear()
        self._facts = Facts(self._context)

    def _hand_over(self) -> None:
        if self._facts:
            self.writer.submit(self._facts)
            self._facts = Facts(self._context)

    def _take(self, final: bool) -> None:
        if not self.writer.accepting:
            self._drop()
            return
        if self._streams:
            self._sample(_monotonic(), final)
        if self._lists:
            self._take_lists(final)
        self._hand_over()

    # --- the events noted in a method of their own (an event is a tuple: `call, at, ...`) -------------------------

    def _queued(self, call: Any, at: float) -> None:
        if self.closed:  # events from now on are not noted
            return
        call_id = call.call_id
        if self._handle is None:  # what is observed now is handed to the writer at the next tick
            self._schedule(self._interval)
        parent = call.parent
        if parent is None:
            parent_id = None
            run = self._run_for(requested_run.get())
            noted = [run, run.key, 0]
        else:
            parent_id = parent.call_id
            caller = self._calls.get(parent_id)
            if caller is None:  # (a caller queued before this recording began)
                run = self._run_for(requested_run.get())
                noted = [run, run.key, 0]
            else:
                noted = [caller[0], caller[1], 0]
        self._calls[call_id] = noted
        self._facts.calls.extend((noted[1], call_id, parent_id, call.agent, call.kwargs, at))

    def _stream(self, run: RunRef, call_id: int, position: int, promise: MessagePromise, at: float) -> None:
        self._streams.append(Stream(run, call_id, position, promise, at))
        self._streaming.add(call_id)
        self._ensure_tick()

    def _ended(
        self,
        call: Any,
        noted: list[Any],
        at: float,
        call_status: AgentCallStatus,
        error: BaseException | None,
        inputs_noted: bool,
    ) -> None:
        call_id = call.call_id
        run, key, own = noted
        if self._handle is None:
            self._schedule(self._interval)
        facts = self._facts
        status = call_status.value
        if error is not None and call.parent is None:
            run.failed = True
        own_list = False
        lists: tuple[tuple[str, MessageSequencePromise], ...] = ()
        inputs = call.input_sequence_promise
        if not inputs_noted and inputs is not self._no_input:  # (many calls share one ended, empty input)
            if inputs.pieces_so_far or not inputs.producer_ended:  # (an empty list is stored as no list at all)
                lists = (("input", inputs),)
            else:
                self._no_input = inputs  # ended and empty: it stays so
        replies = call.reply_sequence_promise
        if call_id in self._streaming:
            self._streaming.discard(call_id)
            lists += (("reply", replies),)
        elif replies.producer_ended and len(replies.pieces_so_far) == own:
            # the reply list is just the call's own replies (whole messages, noted already), in order: the store
            # needs no list for it, so none is built here
            own_list = own > 0
        else:
            lists += (("reply", replies),)
        facts.ended.extend((key, call_id, status, at, error, own_list))
        for role, sequence in lists:
            entries = list_entries(sequence, final=False)
            if entries is None:
                self._lists.append((run, call_id, role, sequence))
                self._ensure_tick()
            elif entries:  # an empty list is stored as no list at all
                facts.lists.extend((key, call_id, role, entries))

    def _sample(self, now: float, final: bool) -> None:
        still_open: list[Stream] = []
        for stream in self._streams:
            promise = stream.promise
            count = len(promise.pieces_so_far)
            if count and (not stream.counts or stream.counts[-1] != count):
                stream.counts.append(count)
                stream.times.append(now)
            if promise.producer_ended or final:
                self._finish(stream, now)
            else:
                still_open.append(stream)
        self._streams = still_open

    def _finish(self, stream: Stream, now: float) -> None:
        promise = stream.promise
        pieces = promise.pieces_so_far
        streamed = not isinstance(promise.known_beforehand, Message)
        ended = promise.producer_ended
        if streamed and pieces and (not stream.counts or stream.counts[-1] != len(pieces)):
            stream.counts.append(len(pieces))
            stream.times.append(now)
        entry = entry_of(promise, final=True)
        ended_at = (now if streamed else stream.replied_at) if ended else None
        self._facts.replied.extend(
            (
                stream.run.key,
                stream.call_id,
                stream.position,
                entry,
                streamed,
                stream.replied_at,
                ended_at,
                stream.counts,
                stream.times,
                pieces if streamed else None,  # the stream's own (ended) list: the writer measures the tokens
            )
        )

    def _take_lists(self, final: bool) -> None:
        waiting: list[tuple[RunRef, int, str, MessageSequencePromise]] = []
        for run, call_id, role, sequence in self._lists:
            entries = list_entries(sequence, final)
            if entries is None:
                waiting.append((run, call_id, role, sequence))
            else:
                self._facts.lists.extend((run.key, call_id, role, entries))
        self._lists = waiting

    # --- runs ---------------------------------------------------------------------------------------------------

    def _new_run(self, label: str | None, notebook: str | None, cell: str | None) -> RunRef:
        at = _monotonic()
        run = RunRef(label, notebook, cell, at, wall_clock(at))
        self.writer.submit(("run", run))
        return run

    def _run_for(self, request: RunRequest | None) -> RunRef:
        if request is not None and request.store is self.store:
            run = self._request_runs.get(request)
            if run is None:
                run = self._request_runs[request] = self._new_run(request.label, request.notebook, request.cell)
                request.recordings.append(self)
            return run
        if self._run is None:
            self._run = self._new_run(*self._next_run)
        return self._run

    def _end(self, run: RunRef) -> None:
        self._hand_over()  # the run's facts first: its end must not overtake them
        self.writer.submit(("run_end", run.key, "failed" if run.failed else "finished", _monotonic()))

    def _catch_up(self) -> None:
        try:
            self._take(final=False)
        except Exception as error:
            self.miniagents.log_error_once(error, "THE RUN RECORDER FAILED")
            self._drop()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Hand over everything observed so far and wait until it is in the file (False on timeout).

        For a reader in the same process that must see the latest calls now (e.g. a notebook listing runs right
        after a cell); recording itself never needs it.
        """
        self._catch_up()
        return self.writer.flush(timeout)

    def start_run(self, label: str | None = None, *, notebook: str | None = None, cell: str | None = None) -> RunHandle:
        """End the current run and start the next one: top-level calls made from now on belong to it."""
        self._catch_up()
        if self._run is not None:
            self._end(self._run)
        self._next_run = (label, notebook, cell)
        self._run = self._new_run(label, notebook, cell)
        return RunHandle(self, self._run)

    def end_run(self, run: RunRef) -> None:
        """End `run` if it is the current one (later top-level calls start a new, unlabelled run)."""
        self._catch_up()
        if run is self._run:
            self._end(run)
            self._run = None
            self._next_run = (None, None, None)

    def end_request(self, request: RunRequest) -> None:
        self._catch_up()
        run = self._request_runs.pop(request, None)
        if run is not None:
            self._end(run)

    def close(self) -> None:
        """The context ended: take everything (streams still open are recorded as far as they got), end the runs."""
        if self.closed:
            return
        self.closed = True  # events from now on are not noted
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self.writer.tick_due = None
        try:
            self._take(final=True)
        finally:
            for run in [*self._request_runs.values(), *([self._run] if self._run is not None else [])]:
                self._end(run)
            self._request_runs.clear()
            self._run = None
            self._calls.clear()
            self._inputs_noted.clear()
