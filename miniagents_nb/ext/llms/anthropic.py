"""`AnthropicAgent`: Claude through the official `anthropic` SDK (imported only when an agent calls it).

Anthropic's API differs from OpenAI's in three ways that the agent absorbs: the system prompt is a separate `system`
parameter, the conversation must start with a user message and alternate roles (a fake first user message is
inserted and consecutive messages of one role are merged), and `max_tokens` is mandatory (4096 unless given).
Structured output (`response_format=<pydantic model>`) goes through a forced tool call whose input is the object.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from pydantic import ValidationError

from miniagents_nb.ext.llms.conversion import anthropic_image_block
from miniagents_nb.ext.llms.errors import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMDependencyError,
    LLMResponseError,
    llm_error_from,
)
from miniagents_nb.ext.llms.llm_utils import (
    LLMAgent,
    amessages_to_llm_dicts,
    is_pydantic_model_class,
    llm_miniagent,
    route_unknown_kwargs_to_extra_body,
    thaw,
)
from miniagents_nb.ext.llms.messages import PARSED_OBJECT_KEY, AnthropicMessage
from miniagents_nb.ext.llms.tool_formats import ToolCallResult, anthropic_exchange_dicts, anthropic_tool_request
from miniagents_nb.ext.llms.tools import ToolSet
from miniagents_nb.messages import Message, MessageTokenAppender

__all__ = [
    "AnthropicAgent",
    "AnthropicLLMAgent",
    "anthropic_client",
    "aprepare_dicts_for_anthropic",
    "import_anthropic",
]

_TOOL_NAME_CHARACTERS = re.compile(r"[^a-zA-Z0-9_-]")


def import_anthropic() -> Any:
    """The `anthropic` SDK, or an error that says which extra to install."""
    try:
        import anthropic
    except ImportError as error:
        raise LLMDependencyError(
            "AnthropicAgent needs the `anthropic` package, which is not installed: "
            "run `pip install 'miniagents-nb[anthropic]'` (or `pip install anthropic`).",
            provider="anthropic",
        ) from error
    return anthropic


async def aprepare_dicts_for_anthropic(
    messages: Any,
    *,
    system: str | None = None,
    message_delimiter_for_same_role: str = "\n\n",
    fake_first_user_message: str = "/start",
) -> list[dict[str, Any]]:
    """The conversation in the shape Anthropic accepts.

    - Every system message, then `system`, are joined (with `message_delimiter_for_same_role`) into ONE system dict
      placed LAST; `AnthropicAgent` pops it into the API's `system` parameter.
    - If the conversation does not start with a user message (or is empty), `fake_first_user_message` comes first.
    - Consecutive messages of the same role are merged into one, joined with `message_delimiter_for_same_role`
      (into one list of content blocks when an image is among them: an `ImageMessage` is an `image` block).
    """
    system_texts: list[str] = []
    conversation: list[dict[str, Any]] = []
    for message_dict in await amessages_to_llm_dicts(messages, image_part=anthropic_image_block):
        if message_dict["role"] == "system":
            system_texts.append(_text_of(message_dict["content"]))
        elif conversation and conversation[-1]["role"] == message_dict["role"]:
            previous = conversation[-1]
            if isinstance(previous["content"], str) and isinstance(message_dict["content"], str):
                previous["content"] = f"{previous['content']}{message_delimiter_for_same_role}{message_dict['content']}"
            else:  # an image among them: one list of content blocks
                previous["content"] = [*_blocks(previous["content"]), *_blocks(message_dict["content"])]
        else:
            conversation.append(message_dict)
    if system is not None:
        system_texts.append(system)
    if not conversation or conversation[0]["role"] != "user":
        conversation.insert(0, {"role": "user", "content": fake_first_user_message})
    if system_texts:
        conversation.append({"role": "system", "content": message_delimiter_for_same_role.join(system_texts)})
    return conversation


def _blocks(content: Any) -> list[dict[str, Any]]:
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(block.get("text", "") for block in content if block.get("type") == "text")
    return str(content)


@asynccontextmanager
async def anthropic_client(
    *,
    async_client: Any = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    base_url: str | None = None,
    max_retries: int | None = None,
    default_headers: Any = None,
    default_query: Any = None,
) -> AsyncIterator[Any]:
    """The SDK client for one call: the injected `async_client` (its owner closes it), or a new `AsyncAnthropic`
    closed when the call is over."""
    if async_client is not None:
        yield async_client.with_options(max_retries=max_retries) if max_retries is not None else async_client
        return
    anthropic = import_anthropic()
    if api_key is None and api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise LLMAuthenticationError(
                f"No API key in the environment variable {api_key_env}: set it, or pass api_key=... "
                "(or run offline with FakeLLMAgent / default_llm_agent()).",
                provider="anthropic",
            )
    options: dict[str, Any] = {}
    if api_key is not None:
        options["api_key"] = api_key
    if base_url is not None:
        options["base_url"] = base_url
    if max_retries is not None:
        options["max_retries"] = max_retries
    if default_headers is not None:  # e.g. Azure's `api-key` header: sent with every request of the client
        options["default_headers"] = thaw(default_headers)
    if default_query is not None:
        options["default_query"] = thaw(default_query)
    client = anthropic.AsyncAnthropic(**options)
    try:
        yield client
    finally:
        await client.close()


def _tool_for(model_class: type[Any]) -> dict[str, Any]:
    name = _TOOL_NAME_CHARACTERS.sub("_", model_class.__name__)[:64] or "structured_output"
    return {
        "name": name,
        "description": f"Give your answer as a {model_class.__name__} object: the tool's input is the answer.",
        "input_schema": model_class.model_json_schema(),
    }


class AnthropicLLMAgent(LLMAgent):
    """The class behind `AnthropicAgent` (subclass it to change how the conversation is built or sent).

    `base_url` / `api_key` (or `api_key_env`), `async_client`, `max_retries` and `timeout` work as for
    `OpenAIAgent`. Any other keyword argument goes to `messages.create` / `messages.stream` as is.
    """

    provider: ClassVar[str] = "anthropic"
    replay_fields: ClassVar[tuple[str, ...]] = ("max_tokens",)
    """Declared arguments that shape the answer, so part of the replay key (see `offline.replay_parameters`)."""

    response_message_class: type[Message] = AnthropicMessage
    max_tokens: int = 4096
    fake_first_user_message: str = "/start"
    message_delimiter_for_same_role: str = "\n\n"
    async_client: Any = None
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    max_retries: int | None = None
    timeout: float | None = None
    default_headers: Any = None
    """Headers of every request (the SDK client's `default_headers`; credentials in them are never written)."""
    default_query: Any = None
    """Query parameters of every request (the SDK client's `default_query`)."""

    async def aprepare_message_dicts(self) -> list[dict[str, Any]]:
        return await aprepare_dicts_for_anthropic(
            self.ctx.message_promises,
            system=self.system,
            message_delimiter_for_same_role=self.message_delimiter_for_same_role,
            fake_first_user_message=self.fake_first_user_message,
        )

    def tool_request_kwargs(self, tools: ToolSet, tool_choice: Any, parallel_tool_calls: bool | None) -> dict[str, Any]:
        return anthropic_tool_request(tools, tool_choice, parallel_tool_calls)

    def tool_exchange_dicts(self, text: str, calls: Sequence[ToolCallResult]) -> list[dict[str, Any]]:
        return anthropic_exchange_dicts(text, calls)

    def extend_conversation(
        self, message_dicts: list[dict[str, Any]], new_dicts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The exchange goes before the trailing system dict (which `aproduce_tokens` pops into `system`)."""
        if message_dicts and message_dicts[-1]["role"] == "system":
            return [*message_dicts[:-1], *new_dicts, message_dicts[-1]]
        return [*message_dicts, *new_dicts]

    def translate_error(self, error: Exception) -> Exception:
        return llm_error_from(
            error,
            provider=self.provider,
            model=self.model,
            max_retries=self.max_retries,
            timeout=self.timeout,
            base_url=self.base_url,
        )

    async def aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        conversation = list(message_dicts)
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, **self.sdk_kwargs()}
        if conversation and conversation[-1]["role"] == "system":
            kwargs["system"] = conversation.pop()["content"]
        kwargs["messages"] = conversation
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        turn = self.tool_turn
        if turn is not None:
            kwargs.update(turn.request)
        structured = self.response_format if is_pydantic_model_class(self.response_format) else None
        tool_name = None
        if structured is not None:
            tool = _tool_for(structured)
            tool_name = tool["name"]
            kwargs["tools"] = [*kwargs.get("tools", ()), tool]
            kwargs["tool_choice"] = {"type": "tool", "name": tool_name}
        elif self.response_format is not None:
            raise LLMResponseError(
                "AnthropicAgent takes a pydantic model class as response_format (got "
                f"{type(self.response_format).__name__}): pass the model class itself.",
                provider=self.provider,
                model=self.model,
            )
        append = token_appender.append
        async with anthropic_client(
            async_client=self.async_client,
            api_key=self.api_key,
            api_key_env=self.api_key_env,
            base_url=self.base_url,
            max_retries=self.max_retries,
            default_headers=self.default_headers,
            default_query=self.default_query,
        ) as client:
            if self.stream:
                method = client.messages.stream
                async with method(**route_unknown_kwargs_to_extra_body(method, kwargs)) as stream:
                    async for event in stream:
                        event_type = event.type
                        if event_type == "text":
                            append(event.text)
                        elif event_type == "input_json" and tool_name is not None:
                            append(event.partial_json)
                        elif turn is not None:
                            _report_tool_event(turn, event)
                    final = await stream.get_final_message()
            else:
                method = client.messages.create
                final = await method(**route_unknown_kwargs_to_extra_body(method, kwargs))
                if tool_name is None:
                    text = "".join(block.text for block in final.content if block.type == "text")
                else:
                    text = "".join(json.dumps(block.input) for block in final.content if block.type == "tool_use")
                if text:
                    append(text)
                if turn is not None:
                    for index, block in enumerate(final.content):
                        if block.type == "tool_use":
                            turn.start_tool_call(index, block.id, block.name)
                            turn.add_arguments(index, json.dumps(block.input))
        self._collect(final, token_appender.auxiliary_field_collector, structured, tool_name)

    def _collect(self, final: Any, aux: dict[str, Any], structured: Any, tool_name: str | None) -> None:
        if final.stop_reason is None:
            raise LLMConnectionError(
                "The Anthropic response stream ended before the response was complete (no stop_reason). "
                "The connection was probably cut: retry the call.",
                provider=self.provider,
                model=self.model,
            )
        aux.update(final.model_dump(exclude={"content"}, exclude_none=True))
        blocks = [block.model_dump(exclude_none=True) for block in final.content if block.type != "text"]
        if blocks:
            aux["content_blocks"] = blocks
        if structured is None:
            return
        tool_inputs = [block.input for block in final.content if block.type == "tool_use" and block.name == tool_name]
        if not tool_inputs:
            raise LLMResponseError(
                f"Claude did not answer with the {tool_name} object that response_format asked for "
                f"(stop_reason={final.stop_reason!r}). Raise max_tokens, or retry.",
                provider=self.provider,
                model=self.model,
            )
        try:
            parsed = structured.model_validate(tool_inputs[0])
        except ValidationError as error:
            raise LLMResponseError(
                f"Claude's {tool_name} object does not match the response_format model: {error}",
                provider=self.provider,
                model=self.model,
            ) from error
        aux["parsed"] = parsed.model_dump(mode="json")
        aux[PARSED_OBJECT_KEY] = parsed


def _report_tool_event(turn: Any, event: Any) -> None:
    """A `tool_use` block starting, or a piece of its `input_json_delta`, reported to the tool loop's turn."""
    if event.type == "content_block_start" and event.content_block.type == "tool_use":
        turn.start_tool_call(event.index, event.content_block.id, event.content_block.name)
    elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
        turn.add_arguments(event.index, event.delta.partial_json)


AnthropicAgent = llm_miniagent(AnthropicLLMAgent, alias="ANTHROPIC_AGENT")
"""An agent that answers its input with one Claude message, streamed token by token.

`AnthropicAgent.fork(model="claude-haiku-4-5", max_tokens=1000, system="...")`, then `.trigger(messages)`.
"""
