"""The static `text/plain` and `text/html` forms of a view's state.

They are what nbval compares, what GitHub and nbconvert show, and what JupyterLab shows when a saved notebook is
reopened without a kernel, so they are pure functions of the state: no ids of objects, no random ids, and no
timings except in the timeline's HTML (`_timeline.py`), where they are the point (the tutorials' nbval rules set
that one element aside; text/plain names the lanes without times). Call numbers are left out too (they depend on
how many calls ran before in the session); the tree's shape says who called whom.
"""

from __future__ import annotations

import html
from typing import Any

from miniagents_nb.jupyter._details import details_html
from miniagents_nb.jupyter._images import is_shown_image_source
from miniagents_nb.jupyter._static import widget_css
from miniagents_nb.jupyter._timeline import format_seconds, timeline_html, timeline_text_lines

__all__ = [
    "FALLBACK_MESSAGE_CHARS",
    "LISTED_MARK",
    "MESSAGE_PREVIEW_CHARS",
    "SUPERSEDED_TEXT",
    "TREE_OPEN_DEPTH",
    "TERMINAL_STATUSES",
    "header_title",
    "image_html",
    "mark_incomplete",
    "message_end_text",
    "preview",
    "render_html",
    "render_text",
]

TREE_OPEN_DEPTH = 3
"""Tree nodes this deep and deeper start closed (live and static; views.js has the same number)."""

MESSAGE_PREVIEW_CHARS = 160
"""How much of each message an agent tree node shows (the sequence view shows every message in full)."""

FALLBACK_MESSAGE_CHARS = 20_000
"""How much of each message the static forms keep: they are stored in the notebook file, the live widget is not
limited. The cut is marked with the number of characters left out, so it stays deterministic."""

_STATUS_WORDS = {
    "streaming": "streaming",
    "queued": "queued",
    "running": "running",
    "done": "done",
    "failed": "failed",
    "cancelled": "cancelled",
    "incomplete": "incomplete (the kernel stopped before it ended)",
}

LISTED_MARK = "↑ "
"""Put before a tree line that is a short reference to a message the list above shows in full (the line then gets
no "›" before it: see views.css)."""


def preview(text: str) -> str:
    """One line of at most `MESSAGE_PREVIEW_CHARS` characters."""
    line = " ".join(text.split())
    if len(line) > MESSAGE_PREVIEW_CHARS:
        return line[: MESSAGE_PREVIEW_CHARS - 1] + "…"
    return line


def _capped(text: str) -> str:
    if len(text) <= FALLBACK_MESSAGE_CHARS:
        return text
    return f"{text[:FALLBACK_MESSAGE_CHARS]}… [{len(text) - FALLBACK_MESSAGE_CHARS} more characters]"


def _count(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def _status_phrase(status: str, error: str | None) -> str:
    word = _STATUS_WORDS.get(status, status)
    return f"{word}: {error}" if error and status == "failed" else word


def header_title(state: dict[str, Any]) -> str:
    """`BOSS · 8 messages` for a sequence, `Message from BOSS` for one message (`headerText` in static/views.js)."""
    if state["kind"] == "message":
        message = state["messages"][0] if state["messages"] else None
        sender = f" from {message['sender']}" if message and message.get("sender") else ""
        return f"{state['title']}{sender}"
    return f"{state['title']} · {_count(len(state['messages']), 'message')}"


SUPERSEDED_TEXT = "superseded: its cell ran again"
"""What a view's header adds when a re-run of its cell superseded the calls it shows (`supersededText` in views.js)."""


def _header(state: dict[str, Any]) -> str:
    superseded = f" · {SUPERSEDED_TEXT}" if state.get("superseded") else ""
    return f"{header_title(state)} · {_status_phrase(state['status'], state.get('error'))}{superseded}"


def _message_lines(message: dict[str, Any], labelled: bool) -> list[str]:
    prefix = f"[{message['sender']}] " if labelled and message.get("sender") else ""
    text = _capped(message["text"])
    lines = text.split("\n") if text else [""]
    out = [prefix + lines[0]] + ["    " + line for line in lines[1:]]
    if message["status"] == "failed" and message.get("error"):
        out.append(f"    ({message['error']})")
    elif message["status"] in {"cancelled", "incomplete"}:
        out.append(f"    ({message['status']})")
    return out


def _node_name(node: dict[str, Any]) -> str:
    """`ALIAS`, or `tool name(arguments)` for a tool call (`…` after arguments the model is still writing)."""
    tool = node.get("tool")
    if not tool:
        return str(node["alias"])
    more = "…" if tool["streaming"] else ""
    return f"tool {node['alias']}({tool['arguments']}{more})"


def _node_summary(node: dict[str, Any]) -> str:
    parts = [_status_phrase(node["status"], node.get("error"))]
    if node["message_count"]:
        parts.append(_count(node["message_count"], "message"))
    return f"{_node_name(node)}: {', '.join(parts)}"


def _tree_lines(state: dict[str, Any]) -> list[str]:
    nodes = state["nodes"]
    lines = ["Agent calls:"]
    if not state["roots"]:
        lines.append("  (none yet)")

    def walk(label: str, depth: int) -> None:
        node = nodes[label]
        lines.append("  " * (depth + 1) + _node_summary(node))
        for child in node["children"]:
            walk(child, depth + 1)

    for root in state["roots"]:
        walk(root, 0)
    return lines


def render_text(state: dict[str, Any]) -> str:
    """The `text/plain` form."""
    lines = [_header(state)]
    if state["show_messages"]:
        for message in state["messages"]:
            lines.extend(_message_lines(message, labelled=state["kind"] == "sequence"))
    if state["show_tree"]:
        lines.extend(_tree_lines(state))
    if state.get("show_timeline"):
        lines.extend(timeline_text_lines(state))
    return "\n".join(lines)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


TERMINAL_STATUSES = frozenset({"done", "failed", "cancelled", "incomplete"})
"""Statuses after which nothing changes; anything else, in a view forced to end (the kernel shuts down, the loop
ends), becomes `incomplete`."""


def mark_incomplete(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of `state` in which the view, every message and every call that had not ended reads `incomplete`:
    what a saved notebook shows of a view whose kernel went away mid-stream."""

    def ended(item: dict[str, Any]) -> dict[str, Any]:
        return item if item["status"] in TERMINAL_STATUSES else {**item, "status": "incomplete"}

    marked = {**ended(state), "messages": [ended(message) for message in state["messages"]]}
    if "nodes" in state:
        marked["nodes"] = {label: ended(node) for label, node in state["nodes"].items()}
    return marked


# The static HTML is the live DOM (static/views.js builds the same elements with the same classes), styled by the
# widget's own stylesheet, which travels in a <style> element. Front ends that drop stylesheets (GitHub, an untrusted
# notebook in JupyterLab) still get a readable document: bold names, lists for the tree.


def _badge(own: str, status: str, text: str) -> str:
    return f'<span class="{own} mna-badge mna-badge-{_esc(status)}">{_esc(text)}</span>'


def _html_header(state: dict[str, Any]) -> str:
    parts = [
        f'<span class="mna-title"><b>{_esc(header_title(state))}</b></span> ',
        _badge("mna-view-status", state["status"], _status_phrase(state["status"], state.get("error"))),
    ]
    if state.get("superseded"):
        parts.append(" " + _badge("mna-view-superseded", "superseded", SUPERSEDED_TEXT))
    return f'<div class="mna-header">{"".join(parts)}</div>'


def message_end_text(message: dict[str, Any]) -> str:
    """What a message shows under its text when it did not end well ("" when it did): `messageEndText` in
    static/shared.js, for the static forms."""
    if message["status"] == "failed":
        return str(message.get("error") or "failed")
    if message["status"] in {"cancelled", "incomplete"}:
        return str(message["status"])
    return ""


def image_html(message: dict[str, Any]) -> str:
    """An image message's image (a checked `data:` URL, see `_images.py`; "" for any other message)."""
    image = message.get("image")
    if not image or not is_shown_image_source(str(image.get("src", ""))):
        return ""
    return f'<img class="mna-message-image" src="{_esc(image["src"])}" alt="{_esc(str(image.get("alt", "")))}">'


def _html_message(message: dict[str, Any], labelled: bool, index: int) -> str:
    sender = (
        f'<span class="mna-sender"><b>{_esc(message["sender"])}</b></span> '
        if labelled and message.get("sender")
        else ""
    )
    end = message_end_text(message)
    return (
        f'<div class="mna-message mna-status-{_esc(message["status"])}" data-index="{index}">{sender}'
        f'<div class="mna-message-text">{_esc(_capped(message["text"]))}{image_html(message)}</div>'
        + (f'<div class="mna-message-error">{_esc(end)}</div>' if end else "")
        + "</div>"
    )


def _node_seconds(node: dict[str, Any]) -> str:
    """Inclusive and self time (a final view's; nbval_sanitize.cfg masks them, text/plain has none)."""
    total, own = node.get("total"), node.get("self")
    if total is None:
        return ""
    text = format_seconds(total) + ("" if own is None else f" · self {format_seconds(own)}")
    return f' <span class="mna-node-elapsed">{_esc(text)}</span>'


def _tool_badge(node: dict[str, Any]) -> str:
    """A tool call's node starts with a "tool" badge (`patchNode` in static/views.js draws the same)."""
    return _badge("mna-node-kind", "tool", "tool") + " " if node.get("tool") else ""


def _tool_arguments(node: dict[str, Any]) -> str:
    tool = node.get("tool")
    if not tool:
        return ""
    # the caret says the model is still writing: not in a saved form whose kernel went away meanwhile (incomplete)
    streaming = " mna-node-arguments-streaming" if tool["streaming"] and node["status"] not in TERMINAL_STATUSES else ""
    text = _esc(f"({tool['arguments']})")
    return f'<span class="mna-node-arguments{streaming}" title="{text}">{text}</span> '


def _html_tree(state: dict[str, Any], details: dict[str, dict[str, Any]] | None) -> str:
    nodes = state["nodes"]

    def item(label: str, depth: int) -> str:
        node = nodes[label]
        line = (
            _tool_badge(node)
            + f'<span class="mna-node-alias"><b>{_esc(node["alias"])}</b></span> '
            + _tool_arguments(node)
            + _badge("mna-node-status", node["status"], node["status"])
            + _node_seconds(node)
            + (
                f' <span class="mna-node-count">{_count(node["message_count"], "message")}</span>'
                if node["message_count"]
                else ""
            )
        )
        error = f'<div class="mna-node-error">{_esc(node["error"])}</div>' if node.get("error") else ""
        if details is not None and label in details:  # no times: those are the timeline's (and not deterministic)
            body = details_html(details[label], with_times=False)
            error += f'<details class="mna-node-details"><summary>details</summary>{body}</details>'
        messages = "".join(
            f'<li class="{"mna-node-message mna-listed" if text.startswith(LISTED_MARK) else "mna-node-message"}">'
            f"{_esc(text)}</li>"
            for text in node["messages"]
        )
        children = "".join(item(child, depth + 1) for child in node["children"] if child in nodes)
        opened = " open" if depth < TREE_OPEN_DEPTH else ""  # folds without script; deep trees start closed
        return (
            f'<li class="mna-node mna-status-{_esc(node["status"])}{" mna-node-tool" if node.get("tool") else ""}"'
            f' data-status="{_esc(node["status"])}"'
            f' data-alias="{_esc(node["alias"])}" data-id="{_esc(label)}"><details class="mna-node-box"{opened}>'
            f'<summary class="mna-node-line">{line}</summary>{error}'
            + (f'<ul class="mna-node-messages">{messages}</ul>' if messages else "")
            + (f'<ul class="mna-tree-list">{children}</ul>' if children else "")
            + "</details></li>"
        )

    body = "".join(item(root, 0) for root in state["roots"] if root in nodes)
    body = body or '<li class="mna-node-none">(no agent calls yet)</li>'
    return f'<div class="mna-tree"><div class="mna-tree-title">Agent calls</div><ul class="mna-tree-list">{body}</ul></div>'


def render_html(state: dict[str, Any], details: dict[str, dict[str, Any]] | None = None) -> str:
    """The `text/html` form: the live view's DOM and stylesheet, frozen; with `details` (a final view's), each
    call of the tree can be opened to its details."""
    parts = [
        f"<style>{widget_css('views')}</style>",
        f'<div class="mna-view mna-static" data-kind="{_esc(state["kind"])}">',
    ]
    parts.append(_html_header(state))
    if state["show_messages"]:
        labelled = state["kind"] == "sequence"
        body = "".join(_html_message(message, labelled, index) for index, message in enumerate(state["messages"]))
        parts.append(f'<div class="mna-messages">{body}</div>')
    if state["show_tree"]:
        parts.append(_html_tree(state, details))
    if state["show_tree"] or state.get("show_timeline"):
        parts.append(timeline_html(state))
    parts.append("</div>")
    return "".join(parts)
