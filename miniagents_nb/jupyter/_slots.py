"""One message of a live view: where its stream is, the text so far (capped at `LIVE_MESSAGE_CHARS`), its status,
and the image it shows.

Split from `_view_model.py`, which holds one `Slot` per message; `_chat_model.Entry` is a `Slot` too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from miniagents_nb.jupyter._images import image_state
from miniagents_nb.jupyter._streams import LIVE_MESSAGE_CHARS, Cursor, live_text, message_text_or_error, piece_text
from miniagents_nb.messages.safe_text import safe_error_text

__all__ = ["Slot"]


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

    def fail(self, error: BaseException) -> None:
        """End as cancelled (no error text) or failed (with a text that cannot fail to render)."""
        cancelled = isinstance(error, asyncio.CancelledError)
        self.status = "cancelled" if cancelled else "failed"
        self.error = None if cancelled else safe_error_text(error)

    def take_text(self, cursor: Cursor) -> str:
        """Add the tokens `cursor` gained to the text (noting a failure among them); return what they add."""
        pieces = cursor.take()
        if not pieces:
            return ""
        try:  # the common case, all tokens `str`, in one C-level join
            chunk = "".join(pieces)
        except TypeError:  # an exception among them, or tokens of another type
            pass
        else:
            return self.keep(chunk) if chunk else chunk
        texts: list[str] = []
        for piece in pieces:
            if isinstance(piece, BaseException):
                self.fail(piece)
            else:
                texts.append(piece_text(piece))
        chunk = "".join(texts)
        return self.keep(chunk) if chunk else chunk

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

    def finish(self, cursor: Cursor) -> dict[str, Any]:
        """The exact final form of a message: its resolved text (it may differ from the tokens, e.g. a template)."""
        self.final_sent = True
        result, error = cursor.result()
        update: dict[str, Any] = {}
        if error is not None:
            self.fail(error)
        elif self.status == "streaming":
            text, text_error = message_text_or_error(result)
            if text_error is not None:  # it has no text: show what streamed and why it failed, and go on
                self.status, self.error = "failed", text_error
            else:
                self.status = "done"
                text = live_text(text)
                shown = "".join(self.parts)
                if text != shown:
                    self.parts = [text]
                    if shown and text.startswith(shown):
                        update["suffix"] = text[len(shown) :]  # a capped message: only the rest is sent
                    else:
                        update["text"] = text
                self.image = image_state(result)
                if self.image is not None:
                    update["image"] = self.image
        update["status"] = self.status
        update["error"] = self.error
        return update
