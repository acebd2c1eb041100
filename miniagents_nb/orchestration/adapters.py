"""LLM adapters: what an orchestrated `Agent` calls to turn its chat history into a reply string.

tinysmith's adapters (`OpenAiAPIAdapter`, `MistralAPIAdapter`, `GroqAPIAdapter`, `CustomAPIAdapter`,
`HumanInputAdapter`) keep their names and constructor parameters, including the caller's `token_usage` dict that
every call adds `prompt_tokens`, `completion_tokens` and `total_tokens` to (share one dict between adapters for a
combined count). Underneath they are thin wrappers around our LLM *agents*: each call triggers an agent, so the
notebook views show every LLM call as a child of the orchestrated agent's turn, with its prompt and reply.

Every vendor is reached through its OpenAI-compatible endpoint (`base_url`), so no vendor SDK is needed, and
nothing is imported until the first call. Rate limits and transient failures are left to the SDK's retries
(no blocking `sleep(60)`); only an error that really says "the prompt is too long" becomes `MaxContextError`
(tinysmith turned every HTTP 400 into one). With `MINIAGENTS_NB_LLM=fake` every adapter talks to the offline fake.

The chat roles are importable from here too, as tinysmith's prompt engineers import them from its adapters module.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from miniagents_nb.agents import InteractionContext, MiniAgent, miniagent
from miniagents_nb.ext.llms.credentials import redact_url
from miniagents_nb.ext.llms.messages import AssistantMessage, LLMMessage, SystemMessage, UserMessage
from miniagents_nb.messages import ErrorMessage, Message
from miniagents_nb.orchestration._sync import run_blocking
from miniagents_nb.orchestration.errors import LLMAdapterError, MaxContextError

__all__ = [
    "AssistantMessage",
    "CustomAPIAdapter",
    "FakeLLMAdapter",
    "GroqAPIAdapter",
    "HumanInputAdapter",
    "LLMAdapter",
    "LLMMessage",
    "MaxContextError",
    "MiniAgentLLMAdapter",
    "MistralAPIAdapter",
    "OpenAiAPIAdapter",
    "SystemMessage",
    "TOKEN_USAGE_KEYS",
    "UserMessage",
    "is_context_length_error",
    "usage_of",
]

TOKEN_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
"""The keys every adapter adds to its `token_usage` dict after each call."""

_CONTEXT_LENGTH_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "context length",
    "prompt is too long",
    "too many tokens",
    "reduce the length",
)


def is_context_length_error(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) says that the prompt does not fit the model's context."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MaxContextError):
            return True
        code = getattr(current, "code", None)
        if isinstance(code, str) and code == "context_length_exceeded":
            return True
        text = str(current).lower()
        if any(marker in text for marker in _CONTEXT_LENGTH_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _field(container: Any, name: str) -> Any:
    if container is None:
        return None
    if isinstance(container, dict):
        return container.get(name)
    getter = getattr(container, "get", None)
    if callable(getter):
        try:
            return getter(name)
        except Exception:  # a foreign `get` with another signature: fall back to attributes
            pass
    return getattr(container, name, None)


def _count(container: Any, *names: str) -> int | None:
    for name in names:
        value = _field(container, name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def usage_of(message: Any) -> dict[str, int] | None:
    """The token counts a reply message carries in its `usage` field (OpenAI or Anthropic names), or None."""
    usage = _field(message, "usage")
    if usage is None:
        return None
    prompt = _count(usage, "prompt_tokens", "input_tokens")
    completion = _count(usage, "completion_tokens", "output_tokens")
    total = _count(usage, "total_tokens")
    if prompt is None and completion is None and total is None:
        return None
    prompt = prompt or 0
    completion = completion or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total if total is not None else prompt + completion,
    }


def _as_llm_messages(messages: Iterable[Any]) -> list[LLMMessage]:
    prompt: list[LLMMessage] = []
    for message in messages:
        if isinstance(message, LLMMessage):
            prompt.append(message)
        elif isinstance(message, str):
            prompt.append(UserMessage(content=message))
        elif isinstance(message, Message):
            role = _field(message, "role")
            text = _field(message, "content")
            content = text if isinstance(text, str) else str(message)
            if role == "assistant":
                prompt.append(AssistantMessage(content=content))
            else:
                prompt.append(LLMMessage(content=content, role=role if isinstance(role, str) else "user"))
        else:  # tinysmith-style message objects: anything with `content` (and `role`)
            foreign = getattr(message, "content", None)
            role = getattr(message, "role", "user")
            if not isinstance(foreign, str):
                raise LLMAdapterError(
                    f"Cannot send a {type(message).__name__} to an LLM: put UserMessage, SystemMessage or "
                    "AssistantMessage objects (or plain strings) in the history."
                )
            prompt.append(LLMMessage(content=foreign, role=str(role)))
    return prompt


class LLMAdapter:
    """The interface an orchestrated `Agent` talks to: messages in, reply text out, usage accounted.

    Override the coroutine `agenerate` (preferred) or, as in tinysmith, the blocking `generate`; each defaults to
    the other. `usage` is the caller's dict (tinysmith's attribute name), `token_usage` the same dict.
    """

    llm_agent: MiniAgent | None = None

    def __init__(self, token_usage: dict[str, int] | None = None) -> None:
        self.usage: dict[str, int] = token_usage if token_usage is not None else {}

    @property
    def token_usage(self) -> dict[str, int]:
        """The cumulative token counts of every call made through this adapter (and any adapter sharing the dict)."""
        return self.usage

    def add_usage(self, prompt_tokens: int, completion_tokens: int, total_tokens: int | None = None) -> None:
        """Add one call's counts to `token_usage`, in place, so a dict shared by several adapters sums them all."""
        total = prompt_tokens + completion_tokens if total_tokens is None else total_tokens
        for key, value in zip(TOKEN_USAGE_KEYS, (prompt_tokens, completion_tokens, total), strict=True):
            self.usage[key] = self.usage.get(key, 0) + value

    async def agenerate(self, messages: Sequence[Any]) -> str:
        """The model's reply to `messages` (an agent's history)."""
        if type(self).generate is LLMAdapter.generate:
            raise NotImplementedError(f"{type(self).__name__} must override `agenerate` (or the blocking `generate`).")
        return self.generate(messages)

    def generate(self, messages: Sequence[Any]) -> str:
        """Blocking version of `agenerate`, for scripts (tinysmith's only method)."""
        if type(self).agenerate is LLMAdapter.agenerate:
            raise NotImplementedError(f"{type(self).__name__} must override `agenerate` (or the blocking `generate`).")
        return run_blocking(
            lambda: self.agenerate(messages),
            f"{type(self).__name__}.generate(...)",
            f"await {type(self).__name__}.agenerate(...)",
        )


class MiniAgentLLMAdapter(LLMAdapter):
    """An adapter over any LLM agent: it triggers `llm_agent` with the history and `llm_kwargs`, and returns the
    text of its replies. Usage figures found on the reply messages are added to `token_usage`.
    """

    def __init__(
        self,
        llm_agent: MiniAgent | None = None,
        *,
        token_usage: dict[str, int] | None = None,
        **llm_kwargs: Any,
    ) -> None:
        super().__init__(token_usage)
        self.llm_agent = llm_agent
        self.llm_kwargs = {key: value for key, value in llm_kwargs.items() if value is not None}

    def resolve_llm_agent(self) -> MiniAgent:
        """The LLM agent to trigger (subclasses build theirs on first use, so constructing imports nothing)."""
        if self.llm_agent is None:
            raise LLMAdapterError(f"{type(self).__name__} has no LLM agent: pass `llm_agent=` (any MiniAgent).")
        return self.llm_agent

    async def agenerate(self, messages: Sequence[Any]) -> str:
        """Trigger the LLM agent with `messages`; its reply text, usage added to `token_usage`."""
        llm_agent = self.resolve_llm_agent()
        prompt = _as_llm_messages(messages)
        try:
            replies = await llm_agent.trigger(prompt, **self.llm_kwargs)
        except MaxContextError:
            raise
        except Exception as error:
            if is_context_length_error(error):
                raise MaxContextError(
                    f"The prompt of {len(prompt)} messages does not fit the context of {llm_agent.alias}: {error}"
                ) from error
            raise
        texts: list[str] = []
        for reply in replies:
            if isinstance(reply, ErrorMessage):
                failure = LLMAdapterError(f"{llm_agent.alias} replied with an error: {str(reply).strip()}")
                if is_context_length_error(failure):
                    raise MaxContextError(str(failure))
                raise failure
            counts = usage_of(reply)
            if counts is not None:
                self.add_usage(counts["prompt_tokens"], counts["completion_tokens"], counts["total_tokens"])
            content = _field(reply, "content")
            texts.append(content if isinstance(content, str) else str(reply))
        return "".join(texts)


def _llm_backend() -> str:
    return os.environ.get("MINIAGENTS_NB_LLM", "").strip().lower()


class _OpenAICompatibleAdapter(MiniAgentLLMAdapter):
    """Shared by the vendor adapters: one OpenAI-compatible endpoint, its key variable, tinysmith's parameters."""

    default_base_url: ClassVar[str | None] = None
    api_key_env_var: ClassVar[str | None] = None  # None: the SDK's own lookup (OPENAI_API_KEY)

    def __init__(
        self,
        model: str,
        temperature: float,
        top_p: float,
        token_usage: dict[str, int],
        api_key: str | None = None,
        max_tokens: int | None = None,
        *,
        base_url: str | None = None,
        llm_agent: MiniAgent | None = None,
        **llm_kwargs: Any,
    ) -> None:
        super().__init__(
            llm_agent,
            token_usage=token_usage,
            model=model,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            **llm_kwargs,
        )
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.base_url = base_url if base_url is not None else self.default_base_url
        self._api_key = api_key

    def __repr__(self) -> str:  # never shows the key (nor one inside the base URL)
        base_url = redact_url(self.base_url) if self.base_url is not None else None
        return f"{type(self).__name__}(model={self.model!r}, base_url={base_url!r})"

    def _connection(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(frozen, live) arguments that point the agent at the endpoint; the key stays out of the frozen part,
        so it never appears in persisted calls or in the notebook views."""
        frozen: dict[str, Any] = {}
        if self.base_url is not None:
            frozen["base_url"] = self.base_url
        if self._api_key is not None:
            return frozen, {"api_key": self._api_key}
        if self.api_key_env_var is not None:
            frozen["api_key_env"] = self.api_key_env_var
        return frozen, {}

    def resolve_llm_agent(self) -> MiniAgent:
        """The explicit `llm_agent`, else the fake LLM (`MINIAGENTS_NB_LLM=fake`), else an `OpenAIAgent` for the
        endpoint (built on the first call, which is when the SDK gets imported)."""
        if self.llm_agent is None:
            if _llm_backend() == "fake":
                from miniagents_nb.ext.llms import FakeLLMAgent

                self.llm_agent = FakeLLMAgent
            else:
                from miniagents_nb.ext.llms import OpenAIAgent

                frozen, live = self._connection()
                self.llm_agent = OpenAIAgent.fork(non_freezable_kwargs=live, **frozen)
        return self.llm_agent


class OpenAiAPIAdapter(_OpenAICompatibleAdapter):
    """OpenAI's chat completions (`api_key`, else `OPENAI_API_KEY`)."""


class GroqAPIAdapter(_OpenAICompatibleAdapter):
    """Groq through its OpenAI-compatible endpoint (`api_key`, else `GROQ_API_KEY`)."""

    default_base_url = "https://api.groq.com/openai/v1"
    api_key_env_var = "GROQ_API_KEY"


class MistralAPIAdapter(_OpenAICompatibleAdapter):
    """Mistral through its OpenAI-compatible endpoint (`api_key`, else `MISTRAL_API_KEY`).

    System messages are sent as they are, wherever they are: the endpoint accepts them, so tinysmith's
    "system only at index 0, merged into the next user message" rule is not needed.
    """

    default_base_url = "https://api.mistral.ai/v1"
    api_key_env_var = "MISTRAL_API_KEY"


_PLACEHOLDER_API_KEY = "not-needed"


class CustomAPIAdapter(_OpenAICompatibleAdapter):
    """Any OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...). `base_url` comes first, as in tinysmith;
    `api_key` may be omitted for servers that do not check it (tinysmith insisted on one)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        temperature: float,
        top_p: float,
        token_usage: dict[str, int],
        api_key: str | None = None,
        max_tokens: int | None = None,
        *,
        llm_agent: MiniAgent | None = None,
        **llm_kwargs: Any,
    ) -> None:
        if not isinstance(base_url, str) or not base_url:
            raise LLMAdapterError(
                f"CustomAPIAdapter needs the server's `base_url` (e.g. 'http://localhost:8000/v1'), got {base_url!r}."
            )
        super().__init__(
            model,
            temperature,
            top_p,
            token_usage,
            api_key,
            max_tokens,
            base_url=base_url,
            llm_agent=llm_agent,
            **llm_kwargs,
        )

    def _connection(self) -> tuple[dict[str, Any], dict[str, Any]]:
        # Never fall back to OPENAI_API_KEY here: that key must not be sent to a third-party server.
        frozen, live = super()._connection()
        return frozen, live or {"api_key": _PLACEHOLDER_API_KEY}


class FakeLLMAdapter(MiniAgentLLMAdapter):
    """The offline fake LLM as an adapter: scripted `replies` in order, or `reply_fn(messages) -> str`.

    For tests and tutorials; deterministic, no key, no network.
    """

    def __init__(
        self,
        replies: Sequence[str] | None = None,
        *,
        reply_fn: Callable[[Sequence[Any]], str] | None = None,
        token_usage: dict[str, int] | None = None,
        token_delay: float | None = None,
        model: str | None = None,
        **llm_kwargs: Any,
    ) -> None:
        super().__init__(None, token_usage=token_usage, model=model, **llm_kwargs)
        self._replies = None if replies is None else list(replies)
        self._reply_fn = reply_fn
        self._token_delay = token_delay

    def resolve_llm_agent(self) -> MiniAgent:
        """A fork of `FakeLLMAgent` with this adapter's script (made on the first call)."""
        if self.llm_agent is None:
            from miniagents_nb.ext.llms import FakeLLMAgent

            options: dict[str, Any] = {}
            if self._replies is not None:
                options["replies"] = self._replies
            if self._reply_fn is not None:
                options["reply_fn"] = self._reply_fn
            if self._token_delay is not None:
                options["token_delay"] = self._token_delay
            self.llm_agent = FakeLLMAgent.fork(**options)
        return self.llm_agent


@miniagent(alias="HUMAN")
async def _human_llm_agent(ctx: InteractionContext, input_fn: Callable[[str], str], prompt: str) -> None:
    """A person types the reply the model would give."""
    await ctx.message_promises  # the history is shown in the agent views; the person answers at the prompt
    ctx.reply(AssistantMessage(content=input_fn(prompt), agent_alias="HUMAN"))


class HumanInputAdapter(MiniAgentLLMAdapter):
    """A person plays the LLM (for debugging prompts and strategies): each call reads one line of input."""

    def __init__(
        self,
        prompt: str = "> ",
        *,
        input_fn: Callable[[str], str] | None = None,
        token_usage: dict[str, int] | None = None,
    ) -> None:
        super().__init__(None, token_usage=token_usage)
        self.prompt = prompt
        self._input_fn = input_fn

    def resolve_llm_agent(self) -> MiniAgent:
        """The human agent, reading with `input_fn` (or `input()` as it is at call time)."""
        input_fn = self._input_fn if self._input_fn is not None else (lambda text: builtins.input(text))
        return _human_llm_agent.fork(non_freezable_kwargs={"input_fn": input_fn}, prompt=self.prompt)
