"""Tokens: the pieces a message streams in, and the appender that pushes them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import BaseModel

from miniagents_nb.errors import MessageTypeError
from miniagents_nb.promising.ext.frozen import Frozen
from miniagents_nb.promising.streamed import StreamAppender

__all__ = ["MessageTokenAppender", "MessageTokenStreamer", "TextToken", "Token"]

MessageTokenStreamer = Callable[[dict[str, Any]], AsyncIterator[Any]]
"""`def streamer(auxiliary_field_collector) -> AsyncIterator[token]`; fields put in the dict land on the message."""


class Token(Frozen):
    """A piece of a streamed message (a plain `str` is a token too)."""

    @classmethod
    def non_metadata_fields(cls) -> tuple[str, ...]:
        """Fields that carry the content itself rather than metadata about it."""
        return ()


class TextToken(Token):
    """A token with text `content`."""

    content: str | None = None

    def __init__(self, content: str | None = None, **metadata: Any) -> None:
        super().__init__(content=content, **metadata)

    @classmethod
    def non_metadata_fields(cls) -> tuple[str, ...]:
        return ("content",)

    def _as_string(self) -> str:
        return self.content or ""


class MessageTokenAppender(StreamAppender[Any]):
    """Push tokens of one message (e.g. from an LLM SDK callback); `auxiliary_field_collector` adds fields."""

    __slots__ = ("auxiliary_field_collector",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.auxiliary_field_collector: dict[str, Any] = {}

    def append(self, piece: Any) -> MessageTokenAppender:
        """Add a token: a `str` (kept as is), a `Token`, or a dict / model turned into a `Token`."""
        if type(piece) is str and self._state == self._OPEN:  # what an LLM streams: pushed as it is, at once
            stream = self._stream
            stream.pieces.append(piece)
            if stream.waiters:
                stream.push_wakes()
            return self
        if not isinstance(piece, (str, Token)):
            if isinstance(piece, dict):
                piece = Token(**piece)
            elif isinstance(piece, BaseModel):
                piece = Token(**dict(piece))
            else:
                raise MessageTypeError(
                    f"Unexpected token type: {type(piece)}. Append a str, a Token, a dict or a pydantic model."
                )
        super().append(piece)
        return self
