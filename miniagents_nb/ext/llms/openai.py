"""`OpenAIAgent`: chat completions through the official `openai` SDK (OpenAI and any OpenAI-compatible server).

The SDK is imported when an agent actually calls it, so importing this module needs no extra. Streaming is the
default; usage is requested in streaming mode too (`stream_options={"include_usage": True}`), and the final usage
chunk, which has no choices, is read instead of tripping over it (upstream MiniAgents' bug, SPEC §3 fix 4). The
`system=` argument is the first message of the conversation (fix 11).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from miniagents_nb.compat import lazy_attributes
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext.llms.conversion import openai_image_part
from miniagents_nb.ext.llms.errors import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMDependencyError,
    LLMResponseError,
    llm_error_from,
)
from miniagents_nb.ext.llms.llm_utils import (
    LLMAgent,
    LLMMiniAgent,
    amessages_to_llm_dicts,
    is_pydantic_model_class,
    llm_miniagent,
    route_unknown_kwargs_to_extra_body,
    thaw,
)
from miniagents_nb.ext.llms.messages import PARSED_OBJECT_KEY, OpenAIMessage
from miniagents_nb.ext.llms.tool_formats import ToolCallResult, openai_exchange_dicts, openai_tool_request
from miniagents_nb.ext.llms.tool_loop import ToolTurn
from miniagents_nb.ext.llms.tools import ToolSet
from miniagents_nb.messages import Message, MessageTokenAppender

__all__ = [
    "OpenAIAgent",
    "OpenAILLMAgent",
    "aprepare_dicts_for_openai",
    "import_openai",
    "openai_client",
    "openai_embedding_agent",
]

_PLACEHOLDER_API_KEY = "not-needed"
"""Sent to a custom `base_url` when no key is configured: local servers (vLLM, Ollama) ignore it, the SDK needs one."""


def import_openai() -> Any:
    """The `openai` SDK, or an error that says which extra to install."""
    try:
        import openai
    except ImportError as error:
        raise LLMDependencyError(
            "The OpenAI agents need the `openai` package, which is not installed: "
            "run `pip install 'miniagents-nb[openai]'` (or `pip install openai`).",
            provider="openai",
        ) from error
    return openai


async def aprepare_dicts_for_openai(messages: Any, *, system: str | None = None) -> list[dict[str, Any]]:
    """The conversation as OpenAI chat messages: `system` FIRST (when given), then every message in order.

    Messages without a `role` are the user's; an `ImageMessage` is an `image_url` part. (Upstream MiniAgents appends `system` at the end; SPEC §3 fix 11.)
    """
    dicts = await amessages_to_llm_dicts(messages, image_part=openai_image_part)
    if system is not None:
        dicts.insert(0, {"role": "system", "content": system})
    return dicts


@asynccontextmanager
async def openai_client(
    *,
    async_client: Any = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    base_url: str | None = None,
    max_retries: int | None = None,
    default_headers: Any = None,
    default_query: Any = None,
) -> AsyncIterator[Any]:
    """The SDK client for one call: the injected `async_client` (used as is; its owner closes it), or a new
    `AsyncOpenAI` closed when the call is over (so no connection outlives the event loop it was made on)."""
    if async_client is not None:
        yield async_client.with_options(max_retries=max_retries) if max_retries is not None else async_client
        return
    openai = import_openai()
    if api_key is None and api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise LLMAuthenticationError(
                f"No API key in the environment variable {api_key_env}: set it, or pass api_key=... "
                "(or run offline with FakeLLMAgent / default_llm_agent()).",
                provider="openai",
            )
    custom_server = base_url is not None or bool(os.environ.get("OPENAI_BASE_URL"))
    if api_key is None and custom_server and not os.environ.get("OPENAI_API_KEY"):
        api_key = _PLACEHOLDER_API_KEY  # a local server needs no key; for OpenAI itself the SDK finds credentials
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
    client = openai.AsyncOpenAI(**options)
    try:
        yield client
    finally:
        await client.close()


def _completions(client: Any, method: str) -> Any:
    """`client.chat.completions.<method>`, falling back to the `beta` namespace of older SDKs (parse, stream)."""
    completions = client.chat.completions
    if hasattr(completions, method):
        return getattr(completions, method)
    return getattr(client.beta.chat.completions, method)


def _merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    """Deep-merge `source` into `target`: dicts recursively, everything else replaced."""
    for key, value in source.items():
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        else:
            target[key] = value


class _ChunkCollector:
    """Turns streamed chunks into tokens and response metadata with as little work per chunk as possible.

    A chunk that only carries content costs a few attribute reads and one `append(str)`. The first chunk and any
    chunk that carries more (role, finish_reason, logprobs, tool calls, refusal, usage, unknown fields) is dumped and
    merged: top-level fields replace, streamed strings (refusal, reasoning text) concatenate, tool-call fragments
    are joined by index, logprobs lists are extended.
    """

    __slots__ = ("_append", "aux", "choice", "finished", "first", "message", "tool_calls", "turn")

    def __init__(self, appender: MessageTokenAppender, turn: ToolTurn | None = None) -> None:
        self.turn = turn
        self._append = appender.append
        self.aux = appender.auxiliary_field_collector
        self.choice: dict[str, Any] = {}
        self.message: dict[str, Any] = {}
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.first = True
        self.finished = False

    def feed(self, chunk: Any) -> None:
        choices = chunk.choices
        if not choices:  # the usage chunk (stream_options.include_usage) and other choice-less chunks
            _merge(self.aux, chunk.model_dump(exclude_none=True, exclude={"choices"}))
            return
        if len(choices) != 1:
            raise LLMResponseError(
                f"The server streamed a chunk with {len(choices)} choices; OpenAIAgent asks for one (n=1). "
                "The server may not follow the OpenAI protocol.",
                provider="openai",
            )
        choice = choices[0]
        delta = choice.delta
        content = delta.content
        if content:
            self._append(content)
        if (
            self.first
            or choice.finish_reason is not None
            or chunk.usage is not None
            or delta.role is not None
            or delta.tool_calls
            or getattr(delta, "refusal", None) is not None
            or getattr(delta, "function_call", None) is not None
            or getattr(choice, "logprobs", None) is not None
            or delta.model_extra
            or choice.model_extra
        ):
            self._merge_chunk(chunk, choice, delta)

    def _merge_chunk(self, chunk: Any, choice: Any, delta: Any) -> None:
        self.first = False
        _merge(self.aux, chunk.model_dump(exclude_none=True, exclude={"choices"}))
        choice_data = choice.model_dump(exclude_none=True, exclude={"delta"})
        logprobs = choice_data.pop("logprobs", None)
        if logprobs:
            collected = self.choice.setdefault("logprobs", {})
            for key, value in logprobs.items():
                if isinstance(value, list):
                    collected.setdefault(key, []).extend(value)
                else:
                    collected[key] = value
        if choice_data.get("finish_reason") is not None:
            self.finished = True
        self.choice.update(choice_data)
        delta_data = delta.model_dump(exclude_none=True, exclude={"content"})
        role = delta_data.pop("role", None)
        if role:
            self.aux["role"] = role
        for fragment in delta_data.pop("tool_calls", None) or ():
            self._merge_tool_call(fragment)
        for key, value in delta_data.items():
            current = self.message.get(key)
            if isinstance(value, str) and isinstance(current, str):
                self.message[key] = current + value
            elif isinstance(value, dict) and isinstance(current, dict):
                _merge(current, value)
            else:
                self.message[key] = value

    def _merge_tool_call(self, fragment: dict[str, Any]) -> None:
        index = int(fragment.pop("index", len(self.tool_calls)))
        call = self.tool_calls.setdefault(index, {})
        function = fragment.pop("function", None) or {}
        turn = self.turn
        if turn is not None:  # the tool loop sees each call as it streams (name first, then argument pieces)
            if function.get("name"):
                turn.start_tool_call(index, fragment.get("id") or call.get("id"), function["name"])
            if function.get("arguments"):
                turn.add_arguments(index, function["arguments"])
        call.update(fragment)
        target = call.setdefault("function", {})
        for key, value in function.items():
            target[key] = target.get(key, "") + value if key == "arguments" and isinstance(value, str) else value

    def finish(self) -> None:
        if not self.finished:
            raise LLMConnectionError(
                "The OpenAI response stream ended before the response was complete (no chunk had a finish_reason). "
                "The connection was probably cut: retry the call.",
                provider="openai",
            )
        if self.tool_calls:
            self.message["tool_calls"] = [self.tool_calls[index] for index in sorted(self.tool_calls)]
        choice = dict(self.choice)
        if self.message:
            choice["message"] = self.message
        self.aux["choices"] = [choice]


def _collect_completion(completion: Any, appender: MessageTokenAppender, turn: ToolTurn | None = None) -> None:
    """A whole (non-streamed) completion: its content as the one token, everything else as metadata."""
    data = completion.model_dump(exclude_none=True, exclude={"choices": {"__all__": {"message": {"parsed"}}}})
    choices = data.pop("choices", None) or []
    if len(choices) != 1:
        raise LLMResponseError(
            f"The server answered with {len(choices)} choices; OpenAIAgent asks for one (n=1). "
            "The server may not follow the OpenAI protocol.",
            provider="openai",
        )
    choice = choices[0]
    message = choice.pop("message", None) or {}
    content = message.pop("content", None)
    role = message.pop("role", None)
    if message:
        choice["message"] = message
    if turn is not None:
        for index, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") or {}
            turn.start_tool_call(index, call.get("id"), function.get("name", ""))
            turn.add_arguments(index, function.get("arguments", ""))
    aux = appender.auxiliary_field_collector
    _merge(aux, data)
    if role:
        aux["role"] = role
    aux["choices"] = [choice]
    if content:
        appender.append(content)


def _collect_parsed(completion: Any, aux: dict[str, Any]) -> None:
    parsed = completion.choices[0].message.parsed
    if parsed is not None:
        aux["parsed"] = parsed.model_dump(mode="json")
        aux[PARSED_OBJECT_KEY] = parsed


class OpenAILLMAgent(LLMAgent):
    """The class behind `OpenAIAgent` (subclass it to change how the conversation is built or sent).

    `base_url` / `api_key` (or `api_key_env`, the name of an environment variable) reach any OpenAI-compatible
    server; `async_client` injects a ready SDK client; `max_retries` and `timeout` (seconds) are the SDK's. Any
    other keyword argument goes to `chat.completions.create` as is.
    """

    provider: ClassVar[str] = "openai"

    response_message_class: type[Message] = OpenAIMessage
    n: int = 1
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
    stream_options: Any = Field(default_factory=lambda: {"include_usage": True})

    async def aprepare_message_dicts(self) -> list[dict[str, Any]]:
        return await aprepare_dicts_for_openai(self.ctx.message_promises, system=self.system)

    def tool_request_kwargs(self, tools: ToolSet, tool_choice: Any, parallel_tool_calls: bool | None) -> dict[str, Any]:
        return openai_tool_request(tools, tool_choice, parallel_tool_calls)

    def tool_exchange_dicts(self, text: str, calls: Sequence[ToolCallResult]) -> list[dict[str, Any]]:
        return openai_exchange_dicts(text, calls)

    def translate_error(self, error: Exception) -> Exception:
        if type(error).__name__.endswith("FinishReasonError"):  # the SDK could not parse a cut-off structured output
            return LLMResponseError(
                f"The structured output could not be parsed: {error} Raise max_tokens (or max_completion_tokens), "
                "or simplify the response_format model.",
                provider=self.provider,
                model=self.model,
            )
        return llm_error_from(
            error,
            provider=self.provider,
            model=self.model,
            max_retries=self.max_retries,
            timeout=self.timeout,
            base_url=self.base_url,
        )

    def _request_kwargs(self, message_dicts: list[dict[str, Any]]) -> dict[str, Any]:
        if self.n != 1:
            raise InvalidArgumentsError(
                f"OpenAIAgent replies one message per call, so n must be 1 (got n={self.n}): "
                "trigger the agent several times instead."
            )
        kwargs: dict[str, Any] = {"model": self.model, "messages": message_dicts, **self.sdk_kwargs()}
        if self.response_format is not None and not is_pydantic_model_class(self.response_format):
            kwargs["response_format"] = thaw(self.response_format)
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        turn = self.tool_turn
        if turn is not None:
            kwargs.update(turn.request)
        return kwargs

    async def aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        kwargs = self._request_kwargs(message_dicts)
        stream_options = thaw(self.stream_options)
        structured = self.response_format if is_pydantic_model_class(self.response_format) else None
        async with openai_client(
            async_client=self.async_client,
            api_key=self.api_key,
            api_key_env=self.api_key_env,
            base_url=self.base_url,
            max_retries=self.max_retries,
            default_headers=self.default_headers,
            default_query=self.default_query,
        ) as client:
            if self.stream:
                if stream_options is not None:
                    kwargs["stream_options"] = stream_options
                collector = _ChunkCollector(token_appender, self.tool_turn)
                if structured is not None:
                    method = _completions(client, "stream")
                    kwargs = route_unknown_kwargs_to_extra_body(method, {"response_format": structured, **kwargs})
                    async with method(**kwargs) as stream:
                        async for event in stream:
                            if event.type == "chunk":
                                collector.feed(event.chunk)
                        completion = await stream.get_final_completion()
                    collector.finish()
                    _collect_parsed(completion, token_appender.auxiliary_field_collector)
                else:
                    method = client.chat.completions.create
                    stream = await method(**route_unknown_kwargs_to_extra_body(method, {"stream": True, **kwargs}))
                    try:
                        async for chunk in stream:
                            collector.feed(chunk)
                    finally:
                        await stream.close()
                    collector.finish()
            elif structured is not None:
                method = _completions(client, "parse")
                kwargs = route_unknown_kwargs_to_extra_body(method, {"response_format": structured, **kwargs})
                completion = await method(**kwargs)
                _collect_completion(completion, token_appender, self.tool_turn)
                _collect_parsed(completion, token_appender.auxiliary_field_collector)
            else:
                method = client.chat.completions.create
                completion = await method(**route_unknown_kwargs_to_extra_body(method, kwargs))
                _collect_completion(completion, token_appender, self.tool_turn)


OpenAIAgent = llm_miniagent(OpenAILLMAgent, alias="OPEN_AI_AGENT")
"""An agent that answers its input with one OpenAI chat completion, streamed token by token.

`OpenAIAgent.fork(model="gpt-4.1-mini", system="...", temperature=0.2)`, then `.trigger(messages)`. Works with any
OpenAI-compatible server through `base_url=` / `api_key=`. `response_format=<pydantic model>` gives a reply with
`parsed` (frozen data) and `parsed_object` (the model instance).
"""


if TYPE_CHECKING:
    # Upstream's path of the embedding agent. Its module imports this one, so it is served by `__getattr__` on
    # first use; type checkers see it declared (and any other missing name as an error, not an `Any`).
    openai_embedding_agent: LLMMiniAgent
else:
    __getattr__ = lazy_attributes(
        __name__, {"openai_embedding_agent": "miniagents_nb.ext.llms.openai_embeddings.openai_embedding_agent"}
    )
