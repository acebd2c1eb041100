"""A call's details, for the trace view: its arguments, input, replies (with what the provider said about each:
model, usage, stop reason, ...), its times and its error with the traceback.

Built on demand (a live view asks when the user opens a node; the final static form holds them), never sent with
the updates. Everything is text: untrusted values are shown, never interpreted, and arguments whose names say they
are secrets are masked, so that a saved notebook never holds a key.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from miniagents_nb.jupyter._streams import Cursor, message_text, stream_finished
from miniagents_nb.jupyter._timeline import format_seconds
from miniagents_nb.jupyter._tracker import CallRecord
from miniagents_nb.messages import ImageMessage, Message, MessagePromise

__all__ = ["DETAIL_TEXT_CHARS", "call_details", "details_html"]

DETAIL_TEXT_CHARS = 4_000
"""How much of each message or value the details show (the cut says how much was left out)."""

_SECRET_NAME = re.compile(
    r"(^|_)(api_?key|key|token|secret|password|passwd|authorization|credentials?)($|_)", re.IGNORECASE
)
"""Names of secrets (`api_key`, `auth_token`, `password`), not of counts (`total_tokens`)."""
_MESSAGE_OWN_FIELDS = frozenset({"content", "content_template", "class_"})


def _capped(text: str) -> str:
    if len(text) <= DETAIL_TEXT_CHARS:
        return text
    return f"{text[:DETAIL_TEXT_CHARS]}… [{len(text) - DETAIL_TEXT_CHARS} more characters]"


def _value_text(name: str, value: Any) -> str:
    if _SECRET_NAME.search(name):
        return "•••"  # never shown, never saved
    if isinstance(value, ImageMessage):
        return _capped(str(value))  # its caption or description, never its bytes
    if isinstance(value, tuple):  # frozen lists (a reply's tool_calls, ...): each item read the same way
        return _capped("(" + ", ".join(_value_text(name, item) for item in value) + ")")
    as_kwargs = getattr(value, "as_kwargs", None)  # frozen data (a dict given to a message): its fields
    if callable(as_kwargs):
        value = {key: item for key, item in as_kwargs().items() if key != "class_"}
    if isinstance(value, Mapping):
        return _capped(", ".join(f"{key}={_value_text(str(key), item)}" for key, item in value.items()))
    return _capped(str(value))


def _message_entry(item: MessagePromise | Message) -> dict[str, Any]:
    if isinstance(item, MessagePromise):
        if not stream_finished(item):
            return {"text": "(still streaming)", "fields": []}
        message, error = Cursor(item).result()
        if error is not None:
            return {"text": f"({type(error).__name__}: {error})", "fields": []}
    else:
        message = item
    fields: list[list[str]] = []
    if isinstance(message, Message):
        for name, value in message.as_kwargs().items():
            if name == "data_base64" and isinstance(message, ImageMessage) and isinstance(value, str):
                fields.append([name, f"({len(value)} characters of base64: the image's bytes)"])
            elif name not in _MESSAGE_OWN_FIELDS and value is not None:
                fields.append([name, _value_text(name, value)])
    return {"text": _capped(message_text(message)), "fields": fields}


def call_details(record: CallRecord, node: dict[str, Any]) -> dict[str, Any]:
    """The details of one call; `node` is its tree node (the times on the view's clock)."""
    arguments = [[name, _value_text(name, value)] for name, value in {**record.agent_kwargs, **record.kwargs}.items()]
    inputs: list[dict[str, Any]] = []
    if record.input_sequence is not None:
        for piece in Cursor(record.input_sequence).take():
            if isinstance(piece, (MessagePromise, Message)):
                inputs.append(_message_entry(piece))
    times = [
        [label, format_seconds(node[key])]
        for label, key in (
            ("queued at", "queued"),
            ("started at", "started"),
            ("ended at", "ended"),
            ("ran", "elapsed"),
            ("with its callees", "total"),
            ("first token after", "ttft"),
        )
        if node.get(key) is not None
    ]
    return {
        "id": record.label,
        "alias": record.alias,
        "status": record.status,
        "times": times,
        "arguments": arguments,
        "input": inputs,
        "replies": [_message_entry(promise) for promise in record.messages],
        "error": record.error,
        "traceback": _capped(record.traceback) if record.traceback else None,
    }


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _pairs(css_class: str, pairs: list[list[str]]) -> str:
    rows = "".join(f"<dt>{_esc(name)}</dt><dd>{_esc(value)}</dd>" for name, value in pairs)
    return f'<dl class="{css_class}">{rows}</dl>'


def _messages(entries: list[dict[str, Any]]) -> str:
    items = []
    for entry in entries:
        fields = _pairs("mna-details-fields", entry["fields"]) if entry["fields"] else ""
        items.append(f'<li><div class="mna-details-text">{_esc(entry["text"])}</div>{fields}</li>')
    return f'<ol class="mna-details-messages">{"".join(items)}</ol>'


def details_html(details: dict[str, Any], *, with_times: bool = True) -> str:
    """The details' HTML (static/views.js `detailsView` builds the same DOM)."""
    sections = []
    if details["times"] and with_times:
        sections.append(("Times", _pairs("mna-details-pairs", details["times"])))
    if details["arguments"]:
        sections.append(("Arguments", _pairs("mna-details-pairs", details["arguments"])))
    sections.append(("Input", _messages(details["input"]) if details["input"] else "<i>(no input)</i>"))
    sections.append(
        (
            "Replies",
            _messages(details["replies"])
            if details["replies"]
            else "<i>(none of its own: messages it passed on are shown under the calls that made them)</i>",
        )
    )
    if details["error"]:
        error = details["traceback"] or details["error"]
        sections.append(("Error", f'<div class="mna-details-text mna-details-error">{_esc(error)}</div>'))
    body = "".join(
        f'<div class="mna-details-section"><div class="mna-details-heading">{title}</div>{content}</div>'
        for title, content in sections
    )
    return f'<div class="mna-details-body">{body}</div>'
