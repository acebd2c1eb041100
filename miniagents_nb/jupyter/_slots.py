"""`Slot`: one message of a live view as the front end gets it (the text so far, capped at `LIVE_MESSAGE_CHARS`,
its sender, status, error and image), and how an error reads there."""

from __future__ import annotations

import asyncio
from typing import Any

from miniagents_nb.jupyter._streams import LIVE_MESSAGE_CHARS, Cursor
from miniagents_nb.messages.safe_text import safe_error_text

__all__ = ["Slot", "error_status", "error_text"]


def error_status(error: BaseException) -> str:
    """How a view names the end of a message that ended with `error`."""
    return "cancelled" if isinstance(error, asyncio.CancelledError) else "failed"


def error_text(error: BaseException) -> str | None:
    """The error as a view shows it (none for a cancellation: the status says it)."""
    return None if isinstance(error, asyncio.CancelledError) else safe_error_text(error)


class Slot:
    """One message of a view: where its stream is, the text so far, who sent it, and the image it shows (an
    `ImageMessage`'s, see `_images.py`)."""

    __slots__ = ("cursor", "error", "final_sent", "image", "parts", "sender", "shown", "status")

    def __init__(self, cursor: Cursor | None, sender: str | None) -> None:
        self.cursor = cursor
        self.sender = sender
        self.parts: list[str] = []
        self.shown = 0  # characters in `parts` while streaming (at most LIVE_MESSAGE_CHARS)
        self.status = "streaming"
        self.error: str | None = None
        self.final_sent = False
        self.image: dict[str, str] | None = None

    def keep(self, chunk: str) -> str:
        """Add a streamed chunk; returns the part of it that is shown (none past `LIVE_MESSAGE_CHARS`)."""
        room = LIVE_MESSAGE_CHARS - self.shown
        if room <= 0:
            return ""
        if len(chunk) > room:
            chunk = chunk[:room]  # the final state adds how many characters are not shown
        self.parts.append(chunk)
        self.shown += len(chunk)
        return chunk

    def as_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "sender": self.sender,
            "text": "".join(self.parts),
            "status": self.status,
            "error": self.error,
        }
        if self.image is not None:
            state["image"] = self.image
        return state
