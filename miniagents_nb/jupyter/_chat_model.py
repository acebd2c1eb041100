"""The chat widget's state (both sides of the conversation, the input turn) and its static transcript forms."""

from __future__ import annotations

from html import escape
from typing import Any

from miniagents_nb.jupyter._render import image_html, message_end_text
from miniagents_nb.jupyter._static import widget_css
from miniagents_nb.jupyter._streams import Cursor
from miniagents_nb.jupyter._tracker import CallTracker
from miniagents_nb.jupyter._view_model import Slot, ViewModel
from miniagents_nb.messages import MessagePromise

__all__ = [
    "CANCELLED",
    "DONE",
    "ENDED",
    "FAILED",
    "RUNNING",
    "WAITING",
    "ChatModel",
    "Entry",
    "render_chat_html",
    "render_chat_text",
]

RUNNING, WAITING, ENDED, FAILED, CANCELLED = "running", "waiting", "ended", "failed", "cancelled"
DONE = "done"
"""A chat that takes no input (the exchange of a `%%chat` cell) is done when the reply is complete."""


class Entry(Slot):
    """One message of the transcript: a view slot that also knows whose side it is on."""

    __slots__ = ("role",)

    def __init__(self, cursor: Cursor | None, sender: str | None, role: str) -> None:
        super().__init__(cursor, sender)
        self.role = role

    def as_state(self) -> dict[str, Any]:
        state = super().as_state()
        state["role"] = self.role
        return state


class ChatModel(ViewModel):
    """A view model whose messages are added over time (both sides of the chat) and that ends when the chat does.

    The deltas are the views' (`new`, `append`, `end`, `status`, `error`) plus `chat` (the input turn and the
    notice), so the front end applies them with the same version rules.
    """

    def __init__(
        self,
        *,
        title: str,
        greeting: str,
        placeholder: str,
        user_label: str,
        tracker: CallTracker | None,
        takes_input: bool = True,
    ) -> None:
        super().__init__(
            kind="chat",
            title=title,
            sequence=None,
            message=None,
            tracker=tracker,
            show_messages=True,
            show_tree=False,
        )
        self.status = RUNNING
        self._sent_status = (RUNNING, None)
        self.greeting = greeting
        self.placeholder = placeholder
        self.user_label = user_label
        self.takes_input = takes_input
        """False for a transcript that only shows an exchange (no input row)."""
        self.turn = 0
        """How many times the chat has asked for input: a front end's send names the turn it answers."""
        self.notice: str | None = None
        self.ended = False
        self._announced = 0
        self._sent_chat = self.chat_fields()

    def chat_fields(self) -> dict[str, Any]:
        return {"turn": self.turn, "notice": self.notice}

    def add_incoming(self, promise: MessagePromise) -> None:
        known = promise.known_beforehand
        role = str(known.get("role") or class_role(promise) or "assistant")
        alias = known.get("agent_alias")
        if not alias and self.tracker is not None:
            record = self.tracker.sender_of(promise)
            alias = record.alias if record is not None else None
        self.slots.append(Entry(Cursor(promise), str(alias or role).upper(), role))

    def add_user(self, text: str) -> None:
        entry = Entry(None, self.user_label, "user")
        entry.parts.append(text)
        entry.status = "done"
        self.slots.append(entry)

    def collect(self) -> dict[str, Any] | None:
        delta: dict[str, Any] = {}
        if self._announced < len(self.slots):
            delta["new"] = [[index, self.slots[index].as_state()] for index in range(self._announced, len(self.slots))]
            self._announced = len(self.slots)
        self._collect_slot_text(delta)
        chat = self.chat_fields()
        if chat != self._sent_chat:
            delta["chat"] = chat
            self._sent_chat = chat
        if delta or self._sent_status != (self.status, self.error):
            delta["status"] = self.status
            delta["error"] = self.error
            self._sent_status = (self.status, self.error)
            return delta
        return None

    def finished(self) -> bool:
        return self.ended and all(slot.final_sent for slot in self.slots)

    def snapshot(self) -> dict[str, Any]:
        state = super().snapshot()
        state.update(
            greeting=self.greeting,
            placeholder=self.placeholder,
            takes_input=self.takes_input,
            chat=self.chat_fields(),
        )
        return state


def class_role(promise: MessagePromise) -> str | None:
    fields = getattr(promise.message_class, "model_fields", None)
    field = fields.get("role") if isinstance(fields, dict) else None
    default = getattr(field, "default", None)
    return default if isinstance(default, str) else None


_STATUS_WORDS = {
    RUNNING: "running",
    WAITING: "waiting for the user",
    ENDED: "ended",
    DONE: "done",
    "incomplete": "incomplete (the kernel stopped before it ended)",  # a live chat's saved form (_saved_form.py)
    FAILED: "failed",
    CANCELLED: "cancelled",
}


def _status_phrase(state: dict[str, Any]) -> str:
    word = _STATUS_WORDS.get(state["status"], state["status"])
    return f"{word}: {state['error']}" if state["status"] == FAILED and state.get("error") else word


def render_chat_text(state: dict[str, Any]) -> str:
    """The `text/plain` transcript: it reads like the console user agent's session."""
    lines = [f"{state['title']} ({_status_phrase(state)})"]
    if state.get("greeting"):
        lines.append(state["greeting"])
    for message in state["messages"]:
        text_lines = message["text"].split("\n")
        lines.append("")
        lines.append(f"{message['sender']}: {text_lines[0]}")
        lines.extend(text_lines[1:])
        if message["status"] == "failed" and message.get("error"):
            lines.append(f"    ({message['error']})")
        elif message["status"] in {"cancelled", "incomplete"}:
            lines.append(f"    ({message['status']})")
    notice = state.get("chat", {}).get("notice")
    if notice:
        lines.extend(["", f"({notice})"])
    return "\n".join(lines)


def render_chat_html(state: dict[str, Any]) -> str:
    """The `text/html` transcript: the chat widget's DOM (static/user_agent.js) and stylesheet, frozen, without the
    input row; names in bold for front ends that drop the stylesheet."""
    status = state["status"]
    parts = [
        f"<style>{widget_css('user_agent')}</style>",
        f'<div class="mna-chat mna-static" data-status="{escape(status)}">',
        '<div class="mna-chat-header">',
        f'<span class="mna-chat-title"><b>{escape(state["title"])}</b></span> ',
        f'<span class="mna-chat-status mna-badge mna-badge-{escape(status)}">{escape(_status_phrase(state))}</span>',
        "</div>",
    ]
    if state.get("greeting"):
        parts.append(f'<div class="mna-chat-greeting">{escape(state["greeting"])}</div>')
    parts.append('<div class="mna-chat-log">')
    for index, message in enumerate(state["messages"]):
        end = message_end_text(message)
        parts.append(
            f'<div class="mna-chat-message" data-index="{index}" data-role="{escape(message["role"])}"'
            f' data-status="{escape(message["status"])}">'
            f'<div class="mna-chat-sender"><b>{escape(message["sender"])}</b></div>'
            f'<div class="mna-chat-text">{escape(message["text"])}{image_html(message)}</div>'
            + (f'<div class="mna-chat-error">{escape(end)}</div>' if end else "")
            + "</div>"
        )
    parts.append("</div>")
    notice = state.get("chat", {}).get("notice")
    if notice:
        parts.append(f'<div class="mna-chat-notice">{escape(notice)}</div>')
    parts.append("</div>")
    return "".join(parts)
