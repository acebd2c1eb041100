"""Joining the messages of a sequence into one text message, streamed token by token (`as_single_text_promise`).

It works on anything async-iterable as message promises (a sequence promise); `miniagents_nb.messages.text` turns any
messages into one first.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from miniagents_nb.messages.message import MessagePromise, TextMessage
from miniagents_nb.promising.sentinels import NO_VALUE

__all__ = ["joined_text_promise"]


def joined_text_promise(
    sequence: AsyncIterable[MessagePromise],
    *,
    delimiter: str | None = "\n\n",
    strip_leading_newlines: bool = False,
    reference_original_messages: bool = True,
    start_soon: bool | None = False,
    message_class: type[TextMessage] | None = None,
    **known_beforehand: Any,
) -> MessagePromise:
    """One text message promise joining the messages of `sequence` (see `as_single_text_promise`)."""

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
