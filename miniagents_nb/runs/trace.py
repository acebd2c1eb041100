"""A recorded run as Chrome Trace Event JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open.

Each call is an async slice named by its agent (so every agent gets its own lanes) from when it was queued to when
it and everything it replied was done; a nested `running` slice shows when its agent function ran; its messages
are instant events (`message`, and `tokens` for each sample of a stream, with how many tokens arrived). A parent's
slice encloses its children's: a call is done when the replies of the calls it made are. Times are microseconds
from the run's start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = ["chrome_trace", "write_chrome_trace"]

_CATEGORY = "agent_call"
_PID = 1


class _Message(Protocol):
    @property
    def position(self) -> int: ...
    @property
    def replied_at(self) -> float: ...
    @property
    def streamed(self) -> bool: ...
    @property
    def token_counts(self) -> tuple[int, ...]: ...
    @property
    def token_times(self) -> tuple[float, ...]: ...


class _Call(Protocol):
    @property
    def call_id(self) -> int: ...
    @property
    def parent_id(self) -> int | None: ...
    @property
    def alias(self) -> str: ...
    @property
    def queued_at(self) -> float: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def ended_at(self) -> float | None: ...
    @property
    def span_end(self) -> float: ...
    @property
    def replied(self) -> tuple[Any, ...]: ...
    @property
    def status(self) -> Any: ...


class _Run(Protocol):
    @property
    def run_id(self) -> int: ...
    @property
    def label(self) -> str | None: ...
    @property
    def started_at(self) -> float: ...
    @property
    def calls(self) -> Mapping[int, Any]: ...


def _call_events(call: _Call, ts: Any, tid: int) -> Iterable[dict[str, Any]]:
    common = {"cat": _CATEGORY, "id": call.call_id, "pid": _PID, "tid": tid}
    args = {"call_id": call.call_id, "parent": call.parent_id, "status": str(call.status.value)}
    yield {"name": call.alias, "ph": "b", "ts": ts(call.queued_at), "args": args, **common}
    if call.started_at is not None:
        yield {"name": "running", "ph": "b", "ts": ts(call.started_at), **common}
        yield {"name": "running", "ph": "e", "ts": ts(call.ended_at or call.started_at), **common}
    for message in call.replied:
        replied: _Message = message
        yield {
            "name": "message",
            "ph": "n",
            "ts": ts(replied.replied_at),
            "args": {"position": replied.position},
            **common,
        }
        previous = 0
        for count, at in zip(replied.token_counts, replied.token_times, strict=False):
            yield {"name": "tokens", "ph": "n", "ts": ts(at), "args": {"tokens": count - previous}, **common}
            previous = count
    yield {"name": call.alias, "ph": "e", "ts": ts(call.span_end), **common}


def chrome_trace(run: _Run) -> dict[str, Any]:
    """The trace as a JSON-ready dict (`{"traceEvents": [...], "displayTimeUnit": "ms"}`)."""
    origin = run.started_at

    def ts(at: float) -> float:
        return round((at - origin) * 1e6, 3)

    lanes: dict[str, int] = {}
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": _PID, "tid": 0, "args": {"name": f"run {run.label or run.run_id}"}}
    ]
    body: list[dict[str, Any]] = []
    for call in run.calls.values():
        tid = lanes.setdefault(call.alias, len(lanes) + 1)
        body.extend(_call_events(call, ts, tid))
    for alias, tid in lanes.items():
        events.append({"name": "thread_name", "ph": "M", "pid": _PID, "tid": tid, "args": {"name": alias}})
    events.extend(body)
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome_trace(run: _Run, path: str | Path) -> Path:
    """Write `chrome_trace(run)` to `path` (returned as a `Path`)."""
    target = Path(path)
    target.write_text(json.dumps(chrome_trace(run), ensure_ascii=False), encoding="utf-8")
    return target
