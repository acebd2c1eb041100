"""Text helpers over message sequences: split a stream of text into messages at a delimiter, or join messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.messages.joining import joined_text_promise
from miniagents_nb.messages.message import MessagePromise, TextMessage
from miniagents_nb.messages.sequence import MessageSequence, MessageSequencePromise
from miniagents_nb.messages.tokens import MessageTokenAppender
from miniagents_nb.promising.sentinels import NO_VALUE

__all__ = ["as_single_promise", "as_single_text_promise", "join_messages", "split_messages"]


def as_single_text_promise(
    messages: Any,
    *,
    delimiter: str | None = "\n\n",
    strip_leading_newlines: bool = False,
    reference_original_messages: bool = True,
    start_soon: bool | None = False,
    message_class: type[TextMessage] | None = None,
    **known_beforehand: Any,
) -> MessagePromise:
    """Join every message of `messages` into one text message promise, streamed token by token.

    The result collects the metadata of the joined messages (later ones win) and, with
    `reference_original_messages`, the messages themselves as `original_messages`. `start_soon=None` inherits the
    context's default.
    """
    return joined_text_promise(
        MessageSequence.turn_into_sequence_promise(messages),
        delimiter=delimiter,
        strip_leading_newlines=strip_leading_newlines,
        reference_original_messages=reference_original_messages,
        start_soon=start_soon,
        message_class=message_class,
        **known_beforehand,
    )


as_single_promise = as_single_text_promise
"""The older name of `as_single_text_promise`."""

join_messages = as_single_text_promise
"""The seeds' name for joining messages into one (`as_single_text_promise`)."""


def split_messages(
    messages: Any,
    *,
    delimiter: str = "\n\n",
    code_block_delimiter: str | None = "```",
    start_soon: bool | None = None,
    **known_beforehand: Any,
) -> MessageSequencePromise:
    """Split the text of `messages` at `delimiter` into separate text messages, while the tokens stream.

    A delimiter inside a fenced code block (between two `code_block_delimiter`s) does not split. Every part is a
    message promise that streams as soon as its first text arrives, carrying `known_beforehand`; empty parts are
    dropped. `start_soon=None` inherits the context's default.
    """
    if not delimiter:
        raise InvalidArgumentsError("`delimiter` must be a non-empty string.")
    source = MessageSequence.turn_into_sequence_promise(messages)

    async def parts() -> AsyncIterator[MessagePromise]:
        splitter = _TextSplitter(delimiter, code_block_delimiter, known_beforehand)
        async for message_promise in source:
            async for token in message_promise:
                for part in splitter.feed(str(token)):
                    yield part
            for part in splitter.end_of_message():
                yield part

    sequence = MessageSequence(appender_capture_errors=True, start_soon=NO_VALUE if start_soon is None else start_soon)
    with sequence.message_appender:
        sequence.message_appender.append(parts())
    return sequence.sequence_promise


class _TextSplitter:
    """Streaming splitter: text goes into the current part as soon as it cannot be the start of a delimiter."""

    def __init__(self, delimiter: str, code_block_delimiter: str | None, known_beforehand: dict[str, Any]) -> None:
        self._delimiter = delimiter
        self._fence = code_block_delimiter or None
        self._known_beforehand = known_beforehand
        self._buffer = ""
        self._in_code_block = False
        self._appender: MessageTokenAppender | None = None
        self._holdback = max(len(delimiter), len(self._fence or "")) - 1

    def feed(self, text: str) -> list[MessagePromise]:
        self._buffer += text
        return self._drain(final=False)

    def end_of_message(self) -> list[MessagePromise]:
        new_parts = self._drain(final=True)
        self._close_part()
        self._in_code_block = False
        return new_parts

    def _drain(self, final: bool) -> list[MessagePromise]:
        new_parts: list[MessagePromise] = []
        while True:
            buffer = self._buffer
            fence_at = buffer.find(self._fence) if self._fence else -1
            split_at = -1 if self._in_code_block else buffer.find(self._delimiter)
            if split_at >= 0 and (fence_at < 0 or split_at < fence_at):
                self._emit(buffer[:split_at], new_parts)
                self._buffer = buffer[split_at + len(self._delimiter) :]
                self._close_part()
            elif fence_at >= 0:
                end = fence_at + len(self._fence or "")
                self._emit(buffer[:end], new_parts)
                self._buffer = buffer[end:]
                self._in_code_block = not self._in_code_block
            else:
                keep = 0 if final else min(self._holdback, len(buffer))
                self._emit(buffer[: len(buffer) - keep], new_parts)
                self._buffer = buffer[len(buffer) - keep :]
                return new_parts

    def _emit(self, text: str, new_parts: list[MessagePromise]) -> None:
        if not text:
            return
        appender = self._appender
        if appender is None:
            appender = self._appender = MessageTokenAppender(capture_errors=True)
            appender.open()
            new_parts.append(
                TextMessage.promise(message_token_streamer=appender, start_soon=False, **self._known_beforehand)
            )
        appender.append(text)

    def _close_part(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None
