"""Messages, message promises and flat message sequences.

A message is an immutable `Frozen` model. A `MessagePromise` streams a message's tokens and resolves to the
message. A `MessageSequencePromise` streams message promises: whatever an agent replies (strings, dicts, models,
messages, promises, lists, generators, async iterables, other agents' replies, nested to any depth) is flattened
into it in the background, in order, except for what was placed out of order.

This layer sits on `promising` and knows nothing of agents: one module per purpose, re-exported here.
"""

from __future__ import annotations

from miniagents_nb.messages.appender import MessageSequenceAppender
from miniagents_nb.messages.context import MessagingContext
from miniagents_nb.messages.freezing import MessageType, SingleMessageType, freeze_message_item
from miniagents_nb.messages.image import ImageMessage
from miniagents_nb.messages.message import (
    ErrorMessage,
    Message,
    MessagePromise,
    StrictMessage,
    TextMessage,
    error_to_text,
)
from miniagents_nb.messages.roles import AssistantMessage, LLMMessage, SystemMessage, UserMessage
from miniagents_nb.messages.sequence import (
    MessageSequence,
    MessageSequencePromise,
    SafeMessageSequencePromise,
)
from miniagents_nb.messages.text import as_single_promise, as_single_text_promise, join_messages, split_messages
from miniagents_nb.messages.tokens import MessageTokenAppender, MessageTokenStreamer, TextToken, Token

__all__ = [
    "AssistantMessage",
    "ErrorMessage",
    "ImageMessage",
    "LLMMessage",
    "Message",
    "MessagePromise",
    "MessageSequence",
    "MessageSequenceAppender",
    "MessageSequencePromise",
    "MessageTokenAppender",
    "MessageTokenStreamer",
    "MessageType",
    "MessagingContext",
    "SafeMessageSequencePromise",
    "SingleMessageType",
    "StrictMessage",
    "SystemMessage",
    "TextMessage",
    "TextToken",
    "Token",
    "UserMessage",
    "as_single_promise",
    "as_single_text_promise",
    "error_to_text",
    "freeze_message_item",
    "join_messages",
    "split_messages",
]
