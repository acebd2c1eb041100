"""Read replayable promises the way a view needs to: what has arrived so far, without a task per piece.

`async for` over a promise hands pieces over one at a time, so following many messages at once would take one
task per message and one wake-up per token. A view instead looks at what each stream produced so far on its own
schedule (at most ~20 times a second) and waits on all of them at once, through the core's public observation
surface (`StreamCursor`, `producer_ended`, `pieces_so_far`, `cancel_producer`, `original_promise`).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from miniagents_nb.messages import MessagePromise
from miniagents_nb.messages.safe_text import safe_error_text, safe_str
from miniagents_nb.promising import StreamCursor, StreamedPromise

__all__ = [
    "LIVE_MESSAGE_CHARS",
    "Cursor",
    "cancel_stream",
    "live_text",
    "message_text",
    "message_text_or_error",
    "original_promise",
    "piece_text",
    "stream_finished",
    "stream_pieces",
]


LIVE_MESSAGE_CHARS = 200_000
"""The most characters of one message a live view sends to the front end. A longer message (a 10 MB page an agent
scraped) ends its shown text with `… [N more characters]`: sent whole, it would be sent twice (streamed, then in the
final state), far over the IOPub data rate jupyter_server allows (1 MB/s by default), which drops the view's
updates. The message itself is untouched."""


def live_text(text: str) -> str:
    """`text` as a live view shows it: at most `LIVE_MESSAGE_CHARS` characters, then how many more there are."""
    if len(text) <= LIVE_MESSAGE_CHARS:
        return text
    return f"{text[:LIVE_MESSAGE_CHARS]}… [{len(text) - LIVE_MESSAGE_CHARS} more characters]"


def piece_text(piece: Any) -> str:
    """The text a token contributes (a plain `str` token is the common case, so it is checked first); a token whose
    `str()` raises reads as a description of that, never as an exception in the view's follower."""
    if type(piece) is str:
        return piece
    return safe_str(piece)


def stream_finished(promise: StreamedPromise[Any, Any]) -> bool:
    """Whether the producer of this promise's pieces has ended."""
    return promise.producer_ended


def stream_pieces(promise: StreamedPromise[Any, Any]) -> list[Any]:
    """The pieces produced so far (the shared buffer itself: read it, never change it)."""
    return promise.pieces_so_far


def cancel_stream(promise: StreamedPromise[Any, Any]) -> bool:
    """Stop a stream pumped by a background task of its own (a token streamer); its consumers then see
    `CancelledError` at that position. A stream pushed by an agent's own code ends when that agent is cancelled."""
    return promise.cancel_producer()


def original_promise(promise: MessagePromise) -> MessagePromise:
    """The promise an agent replied, seen through the `errors_as_messages` view (senders are known by it)."""
    return promise.original_promise


Cursor: TypeAlias = StreamCursor[Any, Any]
"""The views read every stream through the core's `StreamCursor`."""


def message_text(message: Any) -> str:
    """How a resolved message reads in a view (a description of the failure when its `str()` raises)."""
    return message_text_or_error(message)[0]


def message_text_or_error(message: Any) -> tuple[str, str | None]:
    """How a resolved message reads in a view, and the error its `str()` raised (a `content_template` naming a
    missing field, bytes that cannot be decoded), if any: the view shows that message as failed, and goes on."""
    if type(message) is str:
        return message, None
    try:
        return str(message), None
    except Exception as error:
        return safe_str(message), safe_error_text(error)
