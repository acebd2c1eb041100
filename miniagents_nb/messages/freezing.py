"""Freezing: what may be sent or replied, turned immutable at the call (bad input fails there, not later)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Union

from pydantic import BaseModel

from miniagents_nb.errors import MessageTypeError
from miniagents_nb.messages.message import Message, MessagePromise
from miniagents_nb.promising.ext.frozen import check_mapping_keys
from miniagents_nb.promising.streamed import StreamedPromise

__all__ = ["MessageType", "SingleMessageType", "freeze_message_item"]

SingleMessageType = Union[str, dict[str, Any], BaseModel, Message, MessagePromise, BaseException]  # noqa: UP007
"""One item an agent may send or reply."""
MessageType = Union[SingleMessageType, Iterable[Any], AsyncIterable[Any]]  # noqa: UP007
"""What an agent may send or reply: an item, or any nesting of iterables / async iterables of items (a reply
sequence is an async iterable too)."""


def freeze_message_item(item: Any) -> Any:
    """Make a reply / input item immutable right away (raising on what can never be a message).

    Iterables are consumed now (a generator may not be around later); async iterables are kept and consumed when
    the sequence is flattened.
    """
    if type(item) is str or isinstance(item, (Message, MessagePromise, str, BaseException, StreamedPromise)):
        return item
    if isinstance(item, BaseModel):
        return Message(**dict(item))
    if isinstance(item, dict):
        check_mapping_keys(item, "a message given as a dict", "the dict")
        return Message(**item)
    if hasattr(item, "__aiter__"):
        return item
    if hasattr(item, "__iter__") and not isinstance(item, (bytes, bytearray)):
        return tuple([freeze_message_item(element) for element in item])
    raise MessageTypeError(
        f"Unexpected message type: {type(item)}. Send a str, dict, pydantic model, Message, MessagePromise, "
        "exception, or an iterable / async iterable of those."
    )
