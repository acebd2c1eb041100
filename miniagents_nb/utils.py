"""Helpers around message sequences and agent traces."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from miniagents_nb.agents import InteractionContext, MiniAgent, display_trace
from miniagents_nb.messages import MessagePromise, MessageSequence, TextMessage
from miniagents_nb.promising.sentinels import NO_VALUE

__all__ = [
    "MiniAgentsLogFormatter",
    "as_single_promise",
    "as_single_text_promise",
    "display_agent_trace",
    "get_current_agent_trace",
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
