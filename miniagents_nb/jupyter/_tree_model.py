"""A tree node's state: what the trace view shows of one agent call (its status, its messages' previews and its
times), and which changes of it are worth a front-end message.

Kept apart from `_view_model.py` (which decides when to look) so each stays one purpose. A message the view also
shows in its message list is not repeated in the tree: the node keeps a short reference to it instead ("no text
shown twice"). A tool call's node also says which tool it runs and with which arguments (`_tool_calls.py`).
"""

from __future__ import annotations

from typing import Any

from miniagents_nb.jupyter._call_times import CallTimes
from miniagents_nb.jupyter._render import LISTED_MARK, preview
from miniagents_nb.jupyter._streams import Cursor, message_text, piece_text, stream_finished, stream_pieces
from miniagents_nb.jupyter._tool_calls import tool_call_input, tool_state
from miniagents_nb.jupyter._tracker import CallRecord

__all__ = ["LISTED_PREVIEW_CHARS", "joined_text", "node_differs", "node_state", "tool_arguments_streaming"]

LISTED_PREVIEW_CHARS = 40
"""How much of a message the tree shows when the message list above it shows the message in full."""


def joined_text(pieces: list[Any], limit: int | None = None) -> str:
    """The text of a stream's pieces so far (the first `limit` characters or so, when given)."""
    texts: list[str] = []
    size = 0
    for piece in pieces:
        if isinstance(piece, BaseException):
            continue
        text = piece_text(piece)
        texts.append(text)
        size += len(text)
        if limit is not None and size >= limit:
            break
    return "".join(texts)


def _reference(text: str) -> str:
    line = " ".join(text.split())
    short = line if len(line) <= LISTED_PREVIEW_CHARS else line[: LISTED_PREVIEW_CHARS - 1] + "…"
    return LISTED_MARK + short


def node_state(
    record: CallRecord, times: CallTimes, roots: list[CallRecord], listed: set[int] | None = None
) -> dict[str, Any]:
    """The state of `record`'s node; a message whose `id()` is in `listed` gets a short reference only."""
    previews = []
    for promise in record.live_messages():
        pieces = stream_pieces(promise)
        if stream_finished(promise):
            result, error = Cursor(promise).result()
            text = message_text(result) if error is None else joined_text(pieces)
        else:
            text = joined_text(pieces, limit=200)
        previews.append(_reference(text) if listed is not None and id(promise) in listed else preview(text))
    elapsed = record.elapsed()
    return {
        "id": record.label,
        "alias": record.alias,
        "status": record.status,
        "error": record.error,
        "children": [child.label for child in record.children],
        "messages": previews,
        "message_count": len(record.messages),
        "tool": tool_state(record),
        "elapsed": None if elapsed is None else round(elapsed, 3),
        **times.node_times(record, roots),
    }


def tool_arguments_streaming(record: CallRecord) -> bool:
    """Whether the model is still writing the arguments of the tool call this call executes (the node then shows
    them filling in, so the view looks again at its update rate)."""
    promise = tool_call_input(record)
    return promise is not None and not stream_finished(promise)


_COUNTED_UP = frozenset({"elapsed", "total"})


def node_differs(sent: dict[str, Any], node: dict[str, Any]) -> bool:
    """Elapsed time alone is not a change worth a message: the front end counts it up by itself."""
    for key, value in node.items():
        if key in _COUNTED_UP:
            if (sent[key] is None) != (value is None):
                return True
        elif sent[key] != value:
            return True
    return False
