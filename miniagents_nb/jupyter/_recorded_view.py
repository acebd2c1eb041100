"""A recorded run shown as a live reply is: the same view state (`ViewModel.snapshot()`'s dict) built from the
store's `RecordedRun`, rendered by the same static renderers (`_render.py`, `_timeline.py`, `_details.py`).

So a run reopened after a kernel restart reads exactly as the reply did while it ran: the messages of its top-level
calls labelled by sender, the call tree with statuses, message counts and previews, each call's details, and the
timeline with the recorded times (queued / started / ended, message marks, token samples). The core `runs` package
knows nothing of this (it must not import the notebook layer); it only offers the recorded facts.
"""

from __future__ import annotations

import html
from typing import Any

from miniagents_nb.agents import AgentCallStatus
from miniagents_nb.errors import RecordedError
from miniagents_nb.jupyter._details import call_details
from miniagents_nb.jupyter._images import image_state
from miniagents_nb.jupyter._render import preview, render_html, render_text
from miniagents_nb.jupyter._streams import message_text
from miniagents_nb.jupyter._tool_calls import message_tool_state
from miniagents_nb.jupyter._tracker import CallRecord
from miniagents_nb.messages import Message
from miniagents_nb.runs import RecordedCall, RecordedRun

__all__ = ["RecordedRunView", "recorded_details", "recorded_state"]

_NODE_STATUS = {
    AgentCallStatus.QUEUED: "queued",
    AgentCallStatus.RUNNING: "running",
    AgentCallStatus.FINISHED: "done",
    AgentCallStatus.FAILED: "failed",
    AgentCallStatus.CANCELLED: "cancelled",
}
"""The tracker's words for a call's status (what a live tree says)."""

_RUN_STATUS = {"finished": "done", "failed": "failed", "incomplete": "incomplete", "running": "running"}


def _since(at: float | None, t0: float) -> float | None:
    return None if at is None else round(max(0.0, at - t0), 3)


def _walk(call: RecordedCall) -> list[RecordedCall]:
    calls = [call]
    for child in call.children:
        calls.extend(_walk(child))
    return calls


def _node_status(call: RecordedCall, run_status: str) -> str:
    status = _NODE_STATUS.get(call.status, str(call.status.value))
    if status in {"queued", "running"} and run_status != "running":
        return "incomplete"  # its process went away (or recording stopped) before it ended
    return status


def _node(call: RecordedCall, t0: float, run_status: str) -> dict[str, Any]:
    started = _since(call.started_at, t0)
    ticks: list[float] = []
    for message in call.replied:
        ticks.extend(round(max(0.0, at - t0), 3) for at in message.token_times)
    ticks.sort()
    elapsed = None
    if call.started_at is not None and call.ended_at is not None:
        elapsed = round(max(0.0, call.ended_at - call.started_at), 3)
    ended_all = all(member.ended_at is not None for member in _walk(call))
    total = None
    if call.started_at is not None and ended_all:
        total = round(max(0.0, call.span_end - call.started_at), 3)
    return {
        "id": str(call.call_id),
        "alias": call.alias,
        "status": _node_status(call, run_status),
        "error": None if call.error is None else str(call.error),
        "children": [str(child.call_id) for child in call.children],
        "messages": [preview(message.text) for message in call.replied],
        "message_count": len(call.replied),
        "tool": _recorded_tool(call),
        "elapsed": elapsed,
        "total": total,
        "queued": _since(call.queued_at, t0),
        "started": started,
        "ended": _since(call.ended_at, t0),
        "marks": [round(max(0.0, message.replied_at - t0), 3) for message in call.replied],
        "ticks": ticks,
        "ttft": None if started is None or not ticks else round(max(0.0, ticks[0] - started), 3),
    }


def _recorded_tool(call: RecordedCall) -> dict[str, Any] | None:
    """A recorded tool call's name and arguments (its input is the model's tool call message), as a live node has."""
    first = call.inputs[0] if call.inputs else None
    return message_tool_state(first) if isinstance(first, Message) else None


def _senders(run: RecordedRun) -> dict[int, str]:
    """Who replied each message (by the message object: the store gives one object per hash key)."""
    senders: dict[int, str] = {}
    for call in run.calls.values():
        for message in call.replied:
            if message.message is not None:
                senders.setdefault(id(message.message), call.alias)
    return senders


def _message_slot(entry: Message | RecordedError, senders: dict[int, str]) -> dict[str, Any]:
    if isinstance(entry, RecordedError):
        return {"sender": None, "text": "", "status": "failed", "error": str(entry)}
    slot: dict[str, Any] = {
        "sender": senders.get(id(entry)),
        "text": message_text(entry),
        "status": "done",
        "error": None,
    }
    image = image_state(entry)
    if image is not None:
        slot["image"] = image
    return slot


def recorded_state(
    run: RecordedRun, *, messages: bool = True, tree: bool = True, timeline: bool = False
) -> dict[str, Any]:
    """The view state of a recorded run, as `ViewModel.snapshot()` gives it for a live reply sequence."""
    roots = run.roots
    t0 = min((root.queued_at for root in roots), default=run.started_at)
    senders = _senders(run)
    slots = [_message_slot(entry, senders) for root in roots for entry in root.replies]
    nodes: dict[str, dict[str, Any]] = {}
    for root in roots:
        for call in _walk(root):
            nodes[str(call.call_id)] = _node(call, t0, run.status)
    ends = [root.span_end for root in roots]
    if len(roots) == 1:
        title = roots[0].alias
    else:
        title = run.label or "Replies"
    status = _RUN_STATUS.get(run.status, run.status)
    failed = next((str(root.error) for root in roots if root.error is not None), None)
    return {
        "kind": "sequence",
        "title": title,
        "status": status,
        "error": failed if status == "failed" else None,
        "superseded": False,
        "show_messages": messages,
        "show_tree": tree,
        "show_timeline": timeline,
        "clock": round(max(0.0, max(ends) - t0), 3) if ends else None,
        "messages": slots,
        "nodes": nodes,
        "roots": [str(root.call_id) for root in roots],
    }


def _as_record(call: RecordedCall, run: RecordedRun) -> CallRecord:
    """A tracker record standing for a recorded call (what `call_details` reads)."""
    record = CallRecord((0, call.call_id), str(call.call_id), call.alias, None, None, call.queued_at)
    record.status = _node_status(call, run.status)
    record.kwargs = call.kwargs
    record.input_sequence = call.input_sequence_promise
    record.messages = [message.message for message in call.replied if message.message is not None]  # type: ignore[misc]
    if isinstance(call.error, RecordedError):
        record.error = str(call.error)
        record.traceback = call.error.traceback_text
    return record


def recorded_details(run: RecordedRun, state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every call's details (the tree's "details" drawer), as a final live view holds them."""
    details: dict[str, dict[str, Any]] = {}
    for label, node in state["nodes"].items():
        call = run.calls.get(int(label))
        if call is not None:
            details[label] = call_details(_as_record(call, run), node)
    return details


class RecordedRunView:
    """What a notebook shows for a `RecordedRun`: the run's header line, then the reply view's static forms."""

    def __init__(self, run: RecordedRun, *, messages: bool = True, tree: bool = True, timeline: bool = False) -> None:
        self.run = run
        self.state = recorded_state(run, messages=messages, tree=tree, timeline=timeline)

    @property
    def header(self) -> str:
        return self.run.text.split("\n", 1)[0]

    def text(self) -> str:
        return f"Recorded {self.header}\n{render_text(self.state)}"

    def html(self) -> str:
        return (
            f'<div class="miniagents-nb-recorded-run"><div class="mna-recorded-header">Recorded '
            f"{html.escape(self.header)}</div>{render_html(self.state, recorded_details(self.run, self.state))}</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()
