"""A run read back from a store: `RecordedRun`, its `RecordedCall` tree (each an `ObservedCall`, so the views can
render it like a live call), the messages with their timing, and the LLM requests.

Everything here is plain data rebuilt from the file; nothing runs. The text and HTML forms name agents, statuses,
arguments and message texts only (no ids, no times), so a notebook that shows a recorded run stays deterministic.
"""

from __future__ import annotations

import contextvars
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miniagents_nb.agents import AgentCallStatus, AgentDefinition
from miniagents_nb.errors import AgentDefinitionError, RecordedError
from miniagents_nb.messages import Message, MessageSequence, MessageSequencePromise, MessagingContext
from miniagents_nb.runs.trace import write_chrome_trace

__all__ = ["LLMRequest", "RecordedCall", "RecordedMessage", "RecordedRun", "RunSummary", "plain_text"]

_CONTROLS = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")


def plain_text(text: str) -> str:
    """Untrusted text made safe for a terminal: escape sequences and control characters removed."""
    return _CONTROLS.sub("", text)


@dataclass(frozen=True)
class RunSummary:
    """One line of `RunStore.runs()`."""

    run_id: int
    label: str | None
    status: str
    """running | finished | failed (a top-level call failed) | incomplete (its process was killed)."""
    started: float
    """Epoch seconds."""
    duration: float | None
    """Seconds from the start to the end (for an incomplete run: to the last thing recorded)."""
    calls: int
    messages: int
    tokens: int
    failures: int
    notebook: str | None = None
    cell: str | None = None


@dataclass(frozen=True)
class LLMRequest:
    """What an LLM agent's reply said about its request: provider, model, parameters, usage, stop reason."""

    provider: str | None
    model: str | None
    response_model: str | None
    parameters: Mapping[str, Any]
    usage: Any
    stop_reason: str | None
    time_to_first_token: float | None
    """Seconds from the call's start to the first sampled token (None when not streamed)."""
    request_key: str | None = None
    """The key replay matches the request by (`miniagents_nb.runs.replay.request_key`; None in older stores)."""


@dataclass(frozen=True)
class RecordedMessage:
    """A message a call's agent replied itself, with when it was replied and when its tokens arrived."""

    call_id: int
    position: int
    message: Message | None
    """None when it failed (`error`) or was never produced (a lazy stream nobody consumed)."""
    error: str | None
    streamed: bool
    replied_at: float
    ended_at: float | None
    tokens: int
    token_counts: tuple[int, ...] = ()
    """How many tokens had arrived at each sample (cumulative), with `token_times`."""
    token_times: tuple[float, ...] = ()
    """`time.monotonic()` of each sample, in the recording process's clock (like the calls' times)."""
    hash_key: str | None = None
    """The message's key in the store (as the recording context computed it)."""

    @property
    def first_token_at(self) -> float | None:
        return self.token_times[0] if self.token_times else None

    def token_arrivals(self) -> list[float]:
        """One time per token: the sample that first saw it."""
        arrivals: list[float] = []
        previous = 0
        for count, at in zip(self.token_counts, self.token_times, strict=False):
            arrivals.extend([at] * (count - previous))
            previous = count
        return arrivals

    @property
    def text(self) -> str:
        if self.message is not None:
            return str(self.message)
        return f"({self.error})" if self.error else "(not produced)"


async def _recorded_agent(ctx: Any) -> None:
    raise AgentDefinitionError("A recorded agent cannot run: it stands for an agent of a recorded run.")


class RecordedCall:
    """A call of a recorded run; reads as an `ObservedCall` (its `cancel()` does nothing: it ended long ago)."""

    def __init__(self, run: RecordedRun, row: Mapping[str, Any]) -> None:
        self.run = run
        self._call_id: int = row["call_id"]
        self.parent_id: int | None = row["parent_id"]
        self.alias: str = row["alias"]
        self.description: str | None = row["description"]
        self._kwargs: dict[str, Any] = json.loads(row["kwargs"])
        self.status = AgentCallStatus(row["status"])
        self.queued_at: float = row["queued_at"]
        self.started_at: float | None = row["started_at"]
        self.ended_at: float | None = row["ended_at"]
        self.wall_start: float = row["wall_start"]
        error_type = row["error_type"]
        self.error: BaseException | None = (
            None if error_type is None else RecordedError(error_type, row["error_text"] or "", row["error_traceback"])
        )
        self.children: list[RecordedCall] = []
        self.inputs: tuple[Message | RecordedError, ...] = ()
        self.replies: tuple[Message | RecordedError, ...] = ()
        """Every message of the call's reply sequence, nested calls' replies included, in order."""
        self.replied: tuple[RecordedMessage, ...] = ()
        """The messages this call's agent replied itself, with their timing."""
        self.llm_requests: tuple[LLMRequest, ...] = ()
        self._agent: AgentDefinition | None = None
        self._input_promise: MessageSequencePromise | None = None
        self._reply_promise: MessageSequencePromise | None = None

    # --- ObservedCall -------------------------------------------------------------------------------------------

    @property
    def agent(self) -> AgentDefinition:
        """A stand-in definition with the recorded alias and description (it cannot run)."""
        if self._agent is None:
            self._agent = AgentDefinition(
                _recorded_agent, alias=self.alias, description=self.description, normalize_spaces_in_docstring=False
            )
        return self._agent

    @property
    def call_id(self) -> int:
        return self._call_id

    @property
    def parent(self) -> RecordedCall | None:
        return None if self.parent_id is None else self.run.calls.get(self.parent_id)

    @property
    def miniagents(self) -> MessagingContext:
        return self.run.miniagents

    @property
    def kwargs(self) -> Mapping[str, Any]:
        """The arguments as recorded (JSON values; secrets masked)."""
        return self._kwargs

    @property
    def input_sequence_promise(self) -> MessageSequencePromise:
        if self._input_promise is None:
            self._input_promise = self.run.finished_sequence(self.inputs)
        return self._input_promise

    @property
    def reply_sequence_promise(self) -> MessageSequencePromise:
        if self._reply_promise is None:
            self._reply_promise = self.run.finished_sequence(self.replies)
        return self._reply_promise

    def cancel(self) -> bool:
        return False

    @property
    def span_end(self) -> float:
        """When the call and everything it replied (nested calls included) was done, as far as was recorded."""
        ends = [self.ended_at or self.started_at or self.queued_at]
        ends += [message.ended_at or message.replied_at for message in self.replied]
        ends += [child.span_end for child in self.children]
        return max(ends)

    def __repr__(self) -> str:
        return f"RecordedCall({self.alias}, {self.status.value})"


def _arguments_text(kwargs: Mapping[str, Any]) -> str:
    if not kwargs:
        return ""
    parts = [f"{name}={json.dumps(value, ensure_ascii=False, sort_keys=True)}" for name, value in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


def _indented(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in plain_text(text).splitlines() or [""])


@dataclass
class RecordedRun:
    """A run read back from a store (`RunStore.load(run_id)`)."""

    summary: RunSummary
    calls: dict[int, RecordedCall] = field(default_factory=dict)
    """Every call by its number, in the order they were made."""
    messages: dict[str, Message] = field(default_factory=dict)
    """Every message the run refers to, by hash key."""
    started_at: float = 0.0
    """`time.monotonic()` of the run's start in the recording process (the calls' times are on that clock)."""
    ended_at: float | None = None
    _miniagents: MessagingContext | None = field(default=None, repr=False)

    @property
    def run_id(self) -> int:
        return self.summary.run_id

    @property
    def label(self) -> str | None:
        return self.summary.label

    @property
    def status(self) -> str:
        return self.summary.status

    @property
    def roots(self) -> list[RecordedCall]:
        """The top-level calls (and calls whose parent was not recorded), in the order they were made."""
        return [call for call in self.calls.values() if call.parent is None]

    @property
    def miniagents(self) -> MessagingContext:
        """A context of its own (never active) that the recorded calls name as theirs."""
        if self._miniagents is None:
            self._miniagents = contextvars.Context().run(MessagingContext)
        return self._miniagents

    def finished_sequence(self, entries: tuple[Message | RecordedError, ...]) -> MessageSequencePromise:
        """A finished message sequence of these messages (failures at their positions), made in the run's context."""

        def build() -> MessageSequencePromise:
            context = self.miniagents
            context.activate()
            try:
                sequence = MessageSequence(appender_capture_errors=True, start_soon=False, errors_as_messages=False)
                appender = sequence.message_appender
                appender.open()
                for entry in entries:
                    appender.append(entry)
                appender.close()
                return sequence.sequence_promise
            finally:
                context.deactivate()

        return contextvars.Context().run(build)

    # --- text forms ---------------------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The run as text: a header and the call tree with each call's own replies (no ids, no times)."""
        summary = self.summary
        label = f'"{plain_text(summary.label)}"' if summary.label else "(no label)"
        counts = f"{summary.calls} calls · {summary.messages} messages · {summary.failures} failures"
        lines = [f"Run {label} · {summary.status} · {counts}"]

        def walk(call: RecordedCall, depth: int) -> None:
            prefix = "  " * depth
            lines.append(
                f"{prefix}{plain_text(call.alias)}{plain_text(_arguments_text(call.kwargs))} · {call.status.value}"
            )
            if call.error is not None:
                lines.append(_indented(f"✗ {call.error}", prefix + "  "))
            for message in call.replied:
                lines.append(
                    _indented(message.text, prefix + "  → ").replace("\n" + prefix + "  → ", "\n" + prefix + "    ")
                )
            for child in call.children:
                walk(child, depth + 1)

        for root in self.roots:
            walk(root, 1)
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text = self.text
        return {
            "text/plain": text,
            "text/html": f'<pre class="miniagents-nb-recorded-run">{html.escape(text)}</pre>',
        }

    def __repr__(self) -> str:
        return f"RecordedRun(run_id={self.run_id}, label={self.label!r}, status={self.status!r})"

    def to_chrome_trace(self, path: str | Path) -> Path:
        """Write the run as Chrome Trace Event JSON (Perfetto, chrome://tracing): see `miniagents_nb.runs.trace`."""
        return write_chrome_trace(self, path)
