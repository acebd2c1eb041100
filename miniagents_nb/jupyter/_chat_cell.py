"""What a `%%chat` cell shows: its exchange as a chat transcript (the user's text, then the agent's reply streaming
in, each labelled by its sender), drawn by the chat widget without its input row; with `--tree`, the live tree of
the agent calls behind the reply under it.

A `%%chat` cell is one turn of the notebook's conversation, so its output reads like one: the user's message is part
of it, as in any chat, rather than only the reply (the cell's source is not what a reader of the output looks at).
"""

from __future__ import annotations

import asyncio
from typing import Any

from miniagents_nb.jupyter._chat_model import CANCELLED, DONE, FAILED, ChatModel, render_chat_html, render_chat_text
from miniagents_nb.jupyter._static import widget_css, widget_esm
from miniagents_nb.jupyter._streams import Cursor
from miniagents_nb.jupyter._tracker import CallTracker
from miniagents_nb.jupyter.views import AgentTreeView, LiveView
from miniagents_nb.messages import MessagePromise, MessageSequencePromise
from miniagents_nb.messages.safe_text import safe_error_text

__all__ = ["ChatCellView", "ExchangeModel", "chat_cell_views"]


class ExchangeModel(ChatModel):
    """A chat model of one exchange: the user's text, then every message of `reply` as it streams. It ends (done,
    failed or cancelled) with the reply."""

    def __init__(self, *, title: str, user_text: str, reply: MessageSequencePromise, tracker: CallTracker | None):
        super().__init__(
            title=title, greeting="", placeholder="", user_label="USER", tracker=tracker, takes_input=False
        )
        self.add_user(user_text)
        self._reply: Cursor | None = Cursor(reply)
        self._reply_sequence: MessageSequencePromise | None = reply  # the view keeps what it shows alive (until final)

    def release(self) -> None:
        super().release()
        self._reply = self._reply_sequence = None

    def collect(self) -> dict[str, Any] | None:
        if self._reply is None:  # released: final
            return None
        for piece in self._reply.take():
            if isinstance(piece, MessagePromise):
                self.add_incoming(piece)
            elif not self.ended:  # the reply failed (or was cancelled) at this position: the exchange ends so
                self._end_with(piece)
        delta = super().collect()
        if self._reply.finished and not self.ended and all(slot.final_sent for slot in self.slots):
            # done once the last message ended, not when the sequence has all its messages (they may still stream)
            self.ended = True
            self.status = DONE
            self._sent_status = (DONE, None)
            delta = {**(delta or {}), "status": DONE, "error": None}
        return delta

    def _end_with(self, error: BaseException) -> None:
        self.ended = True
        if isinstance(error, asyncio.CancelledError):
            self.status = CANCELLED
        else:
            self.status, self.error = FAILED, safe_error_text(error)

    def waiters(self) -> list[asyncio.Future[None]]:
        futures = super().waiters()
        if self._reply is not None and (future := self._reply.waiter()) is not None:
            futures.append(future)
        return futures

    def producers_ended(self) -> bool:
        return (self._reply is None or self._reply.producer_ended) and super().producers_ended()


class ChatCellView(LiveView):
    """The live transcript of one `%%chat` exchange (the chat widget's front end, with no input row)."""

    _esm = widget_esm("user_agent")
    _css = widget_css("user_agent")

    def _render_text(self, snapshot: dict[str, Any]) -> str:
        return render_chat_text(snapshot)

    def _render_html(self, snapshot: dict[str, Any]) -> str:
        return render_chat_html(snapshot)


def chat_cell_views(
    agent_alias: str,
    user_text: str,
    reply: MessageSequencePromise,
    *,
    tree: bool,
    tracker: CallTracker | None,
    max_updates_per_second: float,
) -> list[LiveView]:
    """The views a `%%chat` cell shows, in order: the exchange, then (with `tree`) the call tree behind the reply."""
    model = ExchangeModel(title=f"Chat with {agent_alias}", user_text=user_text, reply=reply, tracker=tracker)
    views: list[LiveView] = [ChatCellView(model, max_updates_per_second=max_updates_per_second)]
    if tree:
        views.append(AgentTreeView(reply, tracker=tracker, max_updates_per_second=max_updates_per_second))
    return views
