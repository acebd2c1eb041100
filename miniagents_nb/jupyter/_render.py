"""The static `text/plain` and `text/html` forms of a view's state.

They are what nbval compares, what GitHub and nbconvert show, and what JupyterLab shows when a saved notebook is
reopened without a kernel, so they are pure functions of the state: no ids of objects, no random ids, no timings.
Call numbers are left out too (they depend on how many calls ran before in the session); the tree's shape says
who called whom.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["FALLBACK_MESSAGE_CHARS", "MESSAGE_PREVIEW_CHARS", "preview", "render_html", "render_text"]

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
}


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


def _header(state: dict[str, Any]) -> str:
    title = state["title"]
    if state["kind"] == "message":
        message = state["messages"][0] if state["messages"] else None
        sender = f" from {message['sender']}" if message and message.get("sender") else ""
        return f"{title}{sender} ({_status_phrase(state['status'], state.get('error'))})"
    count = _count(len(state["messages"]), "message")
    return f"{title}: {count} ({_status_phrase(state['status'], state.get('error'))})"


def _message_lines(message: dict[str, Any], labelled: bool) -> list[str]:
    prefix = f"[{message['sender']}] " if labelled and message.get("sender") else ""
    text = _capped(message["text"])
    lines = text.split("\n") if text else [""]
    out = [prefix + lines[0]] + ["    " + line for line in lines[1:]]
    if message["status"] == "failed" and message.get("error"):
        out.append(f"    ({message['error']})")
    elif message["status"] == "cancelled":
        out.append("    (cancelled)")
    return out


def _node_summary(node: dict[str, Any]) -> str:
    parts = [_status_phrase(node["status"], node.get("error"))]
    if node["message_count"]:
        parts.append(_count(node["message_count"], "message"))
    return f"{node['alias']}: {', '.join(parts)}"


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
    return "\n".join(lines)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_message(message: dict[str, Any], labelled: bool) -> str:
    sender = (
        f'<span class="mna-fb-sender">{_esc(message["sender"])}</span>' if labelled and message.get("sender") else ""
    )
    extra = ""
    if message["status"] == "failed" and message.get("error"):
        extra = f'<div class="mna-fb-error">{_esc(message["error"])}</div>'
    elif message["status"] == "cancelled":
        extra = '<div class="mna-fb-error">cancelled</div>'
    return (
        f'<div class="mna-fb-message mna-{_esc(message["status"])}">{sender}'
        f'<pre class="mna-fb-text" style="white-space:pre-wrap;margin:0">{_esc(_capped(message["text"]))}</pre>'
        f"{extra}</div>"
    )


def _html_tree(state: dict[str, Any]) -> str:
    nodes = state["nodes"]

    def item(label: str) -> str:
        node = nodes[label]
        messages = "".join(f'<li class="mna-fb-node-message">{_esc(text)}</li>' for text in node["messages"])
        children = "".join(item(child) for child in node["children"])
        return (
            f'<li class="mna-fb-node mna-{_esc(node["status"])}"><b>{_esc(node["alias"])}</b> '
            f'<span class="mna-fb-node-status">{_esc(_status_phrase(node["status"], node.get("error")))}</span>'
            + (f"<ul>{messages}</ul>" if messages else "")
            + (f"<ul>{children}</ul>" if children else "")
            + "</li>"
        )

    body = "".join(item(root) for root in state["roots"]) or "<li>(none yet)</li>"
    return f'<details open class="mna-fb-tree"><summary>Agent calls</summary><ul>{body}</ul></details>'


def render_html(state: dict[str, Any]) -> str:
    """The `text/html` form (inline styles only: nbconvert and GitHub drop stylesheets)."""
    parts = [f'<div class="mna-fallback"><div class="mna-fb-header"><b>{_esc(_header(state))}</b></div>']
    if state["show_messages"]:
        labelled = state["kind"] == "sequence"
        parts.extend(_html_message(message, labelled) for message in state["messages"])
    if state["show_tree"]:
        parts.append(_html_tree(state))
    parts.append("</div>")
    return "".join(parts)
