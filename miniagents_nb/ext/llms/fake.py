"""`FakeLLMAgent`: an offline, deterministic LLM that streams token by token like the real ones.

It is what the tutorials and the demo run on when no API key is configured (see `default_llm_agent`). It answers
with the next of its scripted `replies`, with `reply_fn(messages)`, or (by default) by echoing the last user
message; the reply is split into word tokens, streamed with `token_delay` seconds between them. A reply may also be
a `ToolCall` or a list of strings and `ToolCall`s: the text streams first, then each call's arguments in pieces,
the way a real model streams them (with Python `tools=`, the tool loop runs them and asks again). The final
message carries OpenAI-shaped metadata: `usage` (prompt, completion and total token counts), `choices[0].finish_reason`
and a content-derived `id`. `max_tokens` is honoured (the reply is cut and finish_reason is "length").
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import ValidationError

from miniagents_nb.ext.llms.errors import LLMResponseError
from miniagents_nb.ext.llms.llm_utils import LLMAgent, is_pydantic_model_class, llm_miniagent, thaw
from miniagents_nb.ext.llms.messages import PARSED_OBJECT_KEY, FakeLLMMessage
from miniagents_nb.ext.llms.openai import aprepare_dicts_for_openai
from miniagents_nb.ext.llms.tool_formats import ToolCallResult, openai_exchange_dicts, openai_tool_request
from miniagents_nb.ext.llms.tools import ToolCall, ToolSet
from miniagents_nb.messages import Message, MessageTokenAppender

__all__ = ["FakeLLM", "FakeLLMAgent", "ReplyCursor", "split_into_tokens"]

_TOKEN = re.compile(r"\s*\S+|\s+")


def split_into_tokens(text: str) -> list[str]:
    """Word tokens, each with the whitespace before it: joining them gives `text` back exactly."""
    return _TOKEN.findall(text)


class ReplyCursor:
    """Which scripted reply comes next: one cursor per fork that got `replies`, shared by that fork's calls
    (calls take replies in the order they start; after the last reply the script starts over)."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def take(self) -> int:
        index = self._next
        self._next += 1
        return index

    def __repr__(self) -> str:
        return f"ReplyCursor(next={self._next})"


class FakeLLM(LLMAgent):
    """The class behind `FakeLLMAgent`."""

    provider: ClassVar[str] = "fake"

    model: str | None = "fake-llm"
    response_message_class: type[Message] = FakeLLMMessage
    replies: Any = None
    reply_fn: Any = None
    reply_cursor: Any = None
    token_delay: float = 0.0

    @classmethod
    def prepare_fork_kwargs(cls, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """A fork (or a call) that gets `replies` gets its own cursor: its script starts from the first reply.

        `replies` and `reply_fn` replace each other: given one (and not the other), a fork or call drops the other one
        it inherited. Otherwise an inherited `reply_fn` would go on answering (it wins over `replies`) and the new
        script would be silently ignored."""
        live = super().prepare_fork_kwargs(kwargs)
        if "replies" in kwargs:
            live["reply_cursor"] = ReplyCursor()
        if kwargs.get("replies") is not None and "reply_fn" not in kwargs:
            live["reply_fn"] = None
        elif kwargs.get("reply_fn") is not None and "replies" not in kwargs:
            live["replies"] = None
        return live

    async def aprepare_message_dicts(self) -> list[dict[str, Any]]:
        return await aprepare_dicts_for_openai(self.ctx.message_promises, system=self.system)

    def translate_error(self, error: Exception) -> Exception:
        return error  # the fake's failures come from the test's own reply_fn: pass them on unchanged

    def tool_request_kwargs(self, tools: ToolSet, tool_choice: Any, parallel_tool_calls: bool | None) -> dict[str, Any]:
        return openai_tool_request(tools, tool_choice, parallel_tool_calls)

    def tool_exchange_dicts(self, text: str, calls: Sequence[ToolCallResult]) -> list[dict[str, Any]]:
        return openai_exchange_dicts(text, calls)

    async def _areply(self, message_dicts: list[dict[str, Any]]) -> Any:
        if self.reply_fn is not None:
            reply = self.reply_fn(message_dicts)
            if inspect.isawaitable(reply):
                reply = await reply
            return reply
        replies = self.replies
        if replies is not None:
            if isinstance(replies, (str, ToolCall)):
                return replies
            if not replies:
                return ""
            cursor = self.reply_cursor if self.reply_cursor is not None else ReplyCursor()
            return replies[cursor.take() % len(replies)]
        for message_dict in reversed(message_dicts):
            if message_dict["role"] == "user":
                return _text_of(message_dict["content"])
        return ""

    async def aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        text, tool_calls = _text_and_tool_calls(await self._areply(message_dicts))
        tokens = split_into_tokens(text)
        finish_reason = "tool_calls" if tool_calls else "stop"
        max_tokens = (self.model_extra or {}).get("max_tokens")
        if isinstance(max_tokens, int) and len(tokens) > max_tokens:
            tokens = tokens[:max_tokens]
            finish_reason = "length"
        if self.stream:
            delay = self.token_delay
            for number, token in enumerate(tokens):
                if number:
                    await asyncio.sleep(delay)  # also a task switch when delay is 0: consumers see every token
                token_appender.append(token)
        elif tokens:
            if self.token_delay:
                await asyncio.sleep(self.token_delay * len(tokens))
            token_appender.append("".join(tokens))
        content_key: tuple[Any, ...] = (message_dicts, tokens)  # a text reply keeps the id it always had
        scripted = [(call.name, call.id, _arguments_json(call)) for call in tool_calls]  # each call's JSON, once
        if tool_calls:
            content_key += (scripted,)
        digest = hashlib.sha256(repr(content_key).encode()).hexdigest()
        parts = _tool_call_parts(scripted, digest)
        completion_tokens = len(tokens) + await self._astream_tool_calls(parts)
        prompt_tokens = sum(len(split_into_tokens(_text_of(message_dict["content"]))) for message_dict in message_dicts)
        aux = token_appender.auxiliary_field_collector
        aux["id"] = "fake-" + digest[:24]
        aux["object"] = "chat.completion"
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
        if tool_calls:
            choice["message"] = {
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                    for call_id, name, arguments in parts
                ]
            }
        aux["choices"] = [choice]
        aux["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if is_pydantic_model_class(self.response_format):
            try:
                parsed = self.response_format.model_validate_json("".join(tokens))
            except ValidationError as error:
                raise LLMResponseError(
                    f"The fake LLM's reply is not a valid {self.response_format.__name__} JSON object: {error}. "
                    "Script replies= (or reply_fn=) that return that JSON.",
                    provider=self.provider,
                    model=self.model,
                ) from error
            aux["parsed"] = parsed.model_dump(mode="json")
            aux[PARSED_OBJECT_KEY] = parsed

    async def _astream_tool_calls(self, parts: list[tuple[str, str, str]]) -> int:
        """Report the calls (id, name, arguments JSON) to the tool loop's turn, arguments in word pieces with a task
        switch between them; returns how many pieces there were."""
        turn = self.tool_turn
        pieces_sent = 0
        for index, (call_id, name, arguments) in enumerate(parts):
            if turn is not None:
                turn.start_tool_call(index, call_id, name)
            for piece in split_into_tokens(arguments):
                if turn is not None:
                    turn.add_arguments(index, piece)
                pieces_sent += 1
                if self.stream:
                    await asyncio.sleep(self.token_delay)
        return pieces_sent


def _text_of(content: Any) -> str:
    """A message's text (the text parts of an image message, never its bytes)."""
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part)
    return str(content)


def _text_and_tool_calls(reply: Any) -> tuple[str, list[ToolCall]]:
    """A scripted reply (a str, a ToolCall, or a list / tuple of both) as its text and its tool calls."""
    if isinstance(reply, ToolCall):
        return "", [reply]
    if isinstance(reply, (list, tuple)):
        texts = [str(item) for item in reply if not isinstance(item, ToolCall)]
        return "".join(texts), [item for item in reply if isinstance(item, ToolCall)]
    return ("" if reply is None else str(reply)), []


def _tool_call_parts(scripted: list[tuple[str, str | None, str]], digest: str) -> list[tuple[str, str, str]]:
    """(id, name, arguments JSON) of each scripted (name, id, arguments JSON): ids are made up from the reply's
    content when not scripted."""
    return [
        (call_id or f"call_{digest[:12]}_{index}", name, arguments)
        for index, (name, call_id, arguments) in enumerate(scripted)
    ]


def _arguments_json(call: ToolCall) -> str:
    arguments = call.arguments
    if isinstance(arguments, str):
        return arguments
    return json.dumps(thaw(arguments) if arguments is not None else {})


FakeLLMAgent = llm_miniagent(FakeLLM, alias="FAKE_LLM_AGENT")
"""The offline LLM: `FakeLLMAgent.fork(replies=["Hi!", "Bye!"])`, `.fork(reply_fn=lambda messages: ...)`,
`.fork(token_delay=0.05)`; by default it echoes the last user message."""
