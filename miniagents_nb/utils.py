"""Helpers around message sequences and agent traces."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from miniagents_nb.agents import InteractionContext, MiniAgent, display_trace
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.messages import MessagePromise, MessageSequence, MessageSequencePromise, TextMessage
from miniagents_nb.promising.sentinels import AWAIT, NO_VALUE

__all__ = [
    "MiniAgentsLogFormatter",
    "achain_loop",
    "adialog_loop",
    "as_single_promise",
    "as_single_text_promise",
    "display_agent_trace",
    "get_current_agent_trace",
    "join_messages",
    "split_messages",
]


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
    sequence = MessageSequence.turn_into_sequence_promise(messages)

    async def stream_joined(aux: dict[str, Any]) -> AsyncIterator[str]:
        originals = []
        first_message = True
        async for message_promise in sequence:
            if not first_message and delimiter:
                yield delimiter
            first_message = False
            stripping = strip_leading_newlines
            async for token in message_promise:
                text = str(token)
                if stripping:
                    text = text.lstrip("\n")
                    if not text:
                        continue
                    stripping = False
                yield text
            message = await message_promise
            originals.append(message)
            skip = message.non_metadata_fields()
            for key, value in message:
                if key not in skip and key != "class_":
                    aux[key] = value
        if reference_original_messages:
            aux["original_messages"] = tuple(originals)

    return (message_class or TextMessage).promise(
        start_soon=NO_VALUE if start_soon is None else start_soon,
        message_token_streamer=stream_joined,
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
        from miniagents_nb.messages import MessageTokenAppender

        self._appender_class = MessageTokenAppender
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
            appender = self._appender = self._appender_class(capture_errors=True)
            appender.open()
            new_parts.append(
                TextMessage.promise(message_token_streamer=appender, start_soon=False, **self._known_beforehand)
            )
        appender.append(text)

    def _close_part(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None


async def achain_loop(
    agents: Iterable[MiniAgent | str | None], initial_input: Any = None, raise_keyboard_interrupt: bool = True
) -> None:
    """The earliest README's function form of `agent_loop`: run the chain of agents until KeyboardInterrupt."""
    from miniagents_nb.ext.agents.aggregator_agents import agent_loop

    await agent_loop.trigger(initial_input, agents=list(agents), raise_keyboard_interrupt=raise_keyboard_interrupt)


async def adialog_loop(
    user_agent: MiniAgent, assistant_agent: MiniAgent, initial_input: Any = None, raise_keyboard_interrupt: bool = True
) -> None:
    """The earliest README's dialog loop: the user speaks, the assistant answers, and again, until interrupted."""
    await achain_loop([user_agent, AWAIT, assistant_agent], initial_input, raise_keyboard_interrupt)


def get_current_agent_trace() -> list[MiniAgent]:
    """The agents of the call chain running now, innermost first (empty outside agents)."""
    try:
        return InteractionContext.get_current().get_agent_trace()
    except Exception:
        return []


def display_agent_trace(agent_trace: Iterable[MiniAgent] | None = None) -> str:
    """`INNER <- OUTER` for the given (or the current) agent trace."""
    return display_trace(list(get_current_agent_trace() if agent_trace is None else agent_trace))


class MiniAgentsLogFormatter(logging.Formatter):
    """A log formatter that hides this package's own frames from tracebacks and appends the agent trace."""

    def __init__(
        self,
        *args: Any,
        packages_to_exclude: Iterable[Path] | None = None,
        include_agent_trace: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if packages_to_exclude is None:
            packages_to_exclude = [Path(__file__).parent]
        self.packages_to_exclude = [str(Path(path).resolve()) for path in packages_to_exclude]
        self.include_agent_trace = include_agent_trace

    def formatException(self, ei: Any) -> str:
        _, error, tb = ei
        frames = traceback.extract_tb(tb)
        kept = [frame for frame in frames[:-1] if not self._excluded(frame.filename)] + list(frames[-1:])
        text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(kept))
        text += "".join(traceback.format_exception_only(type(error), error)).rstrip("\n")
        if len(kept) < len(frames):
            text += (
                "\n\nATTENTION! Some parts of the traceback above are omitted (frames of miniagents_nb itself). "
                "Use `MiniAgents(log_reduced_tracebacks=False)` to see the full traceback."
            )
        if self.include_agent_trace:
            trace = get_current_agent_trace()
            if trace:
                text += f"\nAgent trace:\n{display_trace(trace)}\n---\n"
        return text

    def _excluded(self, filename: str) -> bool:
        return any(filename.startswith(package) for package in self.packages_to_exclude)
