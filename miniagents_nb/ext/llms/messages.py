"""Message kinds of the LLM integrations (no LLM SDK is imported here); the roles themselves live in the core
(`miniagents_nb.messages.roles`) and are re-exported here."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic_core import from_json

from miniagents_nb.messages import AssistantMessage, LLMMessage, Message, SystemMessage, TextMessage, UserMessage

__all__ = [
    "PARSED_OBJECT_KEY",
    "AnthropicMessage",
    "AssistantMessage",
    "EmbeddingMessage",
    "FakeLLMMessage",
    "LLMMessage",
    "LLMReplyMessage",
    "OpenAIMessage",
    "PromptLogMessage",
    "SystemMessage",
    "ToolCallMessage",
    "ToolResultMessage",
    "UserMessage",
    "partial_arguments",
]


PARSED_OBJECT_KEY = "__miniagents_nb_parsed_object__"
"""Where an LLM agent puts the live structured-output object among the fields collected for its final message."""


class LLMReplyMessage(AssistantMessage):
    """What an LLM agent replies: an assistant message with everything the provider said about the response
    (usage, stop reason, ids, ...) as extra fields.

    With `response_format=<pydantic model>` the reply also has `parsed`: the structured output as frozen data
    (immutable, hashed, persisted, read like the model: `reply.parsed.field`), and `parsed_object`: the instance
    of the requested model itself (a live object outside the message's fields, so it is not persisted and is gone
    from copies of the message).
    """

    @classmethod
    def tokens_to_message(cls, tokens: Iterable[Any], **extra_fields: Any) -> Message:
        parsed_object = extra_fields.pop(PARSED_OBJECT_KEY, None)
        message = super().tokens_to_message(tokens, **extra_fields)
        if parsed_object is not None:
            message.__dict__["_parsed_object"] = parsed_object
        return message

    @property
    def parsed_object(self) -> Any:
        """The structured output as an instance of the requested `response_format` model (None without one)."""
        return self.__dict__.get("_parsed_object")


class OpenAIMessage(LLMReplyMessage):
    """A reply of `OpenAIAgent` (also of OpenAI-compatible servers): `usage`, `choices[0].finish_reason`, `id`,
    `system_fingerprint`, ... are fields of the message."""


class AnthropicMessage(LLMReplyMessage):
    """A reply of `AnthropicAgent`: `usage`, `stop_reason`, `id`, ... are fields of the message."""


class FakeLLMMessage(LLMReplyMessage):
    """A reply of `FakeLLMAgent`, shaped like an OpenAI reply (`usage`, `choices[0].finish_reason`, `id`)."""


class PromptLogMessage(LLMMessage):
    """One message of a prompt as sent to a provider (what the LLM logger agent writes down)."""


class EmbeddingMessage(Message):
    """An embedding: `embedding` (a tuple of floats) of the text in `content`, with the provider's metadata."""

    content: str | None = None
    embedding: tuple[float, ...]


def partial_arguments(json_so_far: str) -> Any:
    """What a tool call's arguments say so far, from the JSON streamed until now (pydantic's partial JSON parsing:
    unfinished strings, lists and objects are kept as far as they go): `{"city": "Os"}` from `'{"city": "Os'`. None
    when nothing can be read yet. For views that show arguments filling in; it parses the whole text each time, so
    call it at a view's update rate, not per token."""
    if not json_so_far.strip():
        return None
    try:
        return from_json(json_so_far, allow_partial="trailing-strings")
    except ValueError:
        return None


class ToolCallMessage(TextMessage):
    """A tool call the model made, as the input of the tool's agent call: `tool_name` and `tool_call_id` are known
    beforehand, the tokens are the arguments' JSON as the model streams it (a view shows them filling in through a
    `StreamCursor`, and `partial_arguments` reads them before they are complete), and the final message has
    `arguments` (the parsed JSON, None when it is not valid JSON).

    The two fields are how a tool execution is recognised, live or recorded, where this class cannot be imported (the
    run store sits below the LLM layer): a call whose first input has `tool_name` and `tool_call_id` executes a tool
    call, so `miniagents_nb.runs.otel` exports it as an `execute_tool` span (a recorded run's views read them too)."""

    @classmethod
    def tokens_to_message(cls, tokens: Iterable[Any], **extra_fields: Any) -> Message:
        text = "".join(str(token) for token in tokens)
        try:
            arguments = json.loads(text) if text.strip() else {}
        except ValueError:
            arguments = None
        extra_fields.setdefault("arguments", arguments)
        return super().tokens_to_message([text], **extra_fields)


class ToolResultMessage(TextMessage):
    """What a function tool returned, as text for the model (a `str` as is, anything else as JSON); `tool_name` says
    which tool."""
