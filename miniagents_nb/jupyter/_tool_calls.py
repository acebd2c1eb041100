"""What a trace view shows of a tool call: the tool's name and its arguments, filling in while the model writes them.

The tool loop makes each tool call an agent call at once, when the model names the tool: its input is a
`ToolCallMessage` promise whose tokens are the arguments' JSON as the model streams it, with `tool_name` known
beforehand. So the view needs nothing from the loop but that public input: it reads the JSON so far from the
promise's buffer and parses it with pydantic's partial JSON parsing, once per view update (at most ~20 times a
second), never per token. Once the arguments are complete, the message's own parsed `arguments` are shown.
"""

from __future__ import annotations

import json
from typing import Any

from miniagents_nb.ext.llms.conversion import thaw
from miniagents_nb.ext.llms.messages import ToolCallMessage, partial_arguments
from miniagents_nb.jupyter._render import preview
from miniagents_nb.jupyter._streams import Cursor, piece_text, stream_finished, stream_pieces
from miniagents_nb.jupyter._tracker import CallRecord
from miniagents_nb.messages import Message, MessagePromise

__all__ = ["arguments_text", "message_tool_state", "tool_call_input", "tool_state"]


def tool_call_input(record: CallRecord) -> MessagePromise | None:
    """The model's tool call that this call executes (the first message of its input, a `ToolCallMessage`), or
    None for a call that is not a tool call. Looks at the first input piece only (O(1) at each view update), and only
    at what is there: a message promise sent to a call is placed in its input at once, with no task, so the tool
    call's message is there as soon as the call is; a view never starts a call's input flowing (that could start a
    lazy agent whose reply is in the input)."""
    sequence = record.input_sequence
    if sequence is None:
        return None
    pieces = Cursor(sequence).peek()
    first = pieces[0] if pieces else None
    if isinstance(first, MessagePromise) and issubclass(first.message_class, ToolCallMessage):
        return first
    return None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def arguments_text(arguments: Any) -> str:
    """Arguments on one line, as a call reads: `landmark="Eiffel Tower", days=3` (at most `MESSAGE_PREVIEW_CHARS`)."""
    value = thaw(arguments)
    if isinstance(value, dict):
        text = ", ".join(f"{key}={_json(item)}" for key, item in value.items())
    else:
        text = _json(value)
    return preview(text)


def _json_so_far(promise: MessagePromise) -> str:
    return "".join(piece_text(piece) for piece in stream_pieces(promise) if not isinstance(piece, BaseException))


def tool_state(record: CallRecord) -> dict[str, Any] | None:
    """`{"name", "arguments", "streaming"}` of a tool call's node (None for other calls): the arguments so far while
    the model writes them (partial JSON, parsed now), then the complete ones."""
    promise = tool_call_input(record)
    if promise is None:
        return None
    name = str(promise.known_beforehand.as_kwargs().get("tool_name") or record.alias)
    if not stream_finished(promise):
        json_so_far = _json_so_far(promise)
        partial = partial_arguments(json_so_far)
        text = arguments_text(partial) if partial is not None else preview(json_so_far)
        return {"name": name, "arguments": text, "streaming": True}
    message, error = Cursor(promise).result()
    if error is not None or message is None:
        return {"name": name, "arguments": preview(_json_so_far(promise)), "streaming": False}
    return message_tool_state(message, name)


def message_tool_state(message: Message, name: str | None = None) -> dict[str, Any] | None:
    """The tool state of a complete tool call message (a recorded run's input, or a live one once complete)."""
    fields = message.as_kwargs()
    tool_name = fields.get("tool_name")
    if tool_name is None or "tool_call_id" not in fields:
        return None
    arguments = fields.get("arguments")
    text = arguments_text(arguments) if arguments is not None else preview(str(fields.get("content") or ""))
    return {"name": name or str(tool_name), "arguments": text, "streaming": False}
