"""The provider-independent half of the LLM agents: `LLMAgent` (and `LLMMiniAgent`, message conversion).

An LLM agent call replies exactly one message promise, right away, with what is known before the provider is even
called (`model`, `agent_alias`, `response_metadata`) as `known_beforehand`, and closes its reply sequence. Only then
does it read its input, call the provider and push the tokens into the promise as plain `str`s. Everything the
provider says about the response (usage, stop reason, ids) is collected on the side and lands on the final message;
a failure lands in the token stream, so consumers meet it exactly where the message is.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from miniagents_nb.agents import InteractionContext, MiniAgent, MiniAgents
from miniagents_nb.errors import AgentDefinitionError, InvalidArgumentsError
from miniagents_nb.ext.llms.conversion import (
    amessages_to_llm_dicts,
    is_pydantic_model_class,
    message_to_llm_dict,
    route_unknown_kwargs_to_extra_body,
    thaw,
)
from miniagents_nb.ext.llms.credentials import credential_strings, redact_argument, scrub_error
from miniagents_nb.ext.llms.errors import llm_error_from
from miniagents_nb.ext.llms.llm_miniagent import SECRET_KWARGS, LLMMiniAgent, is_freezable, llm_miniagent
from miniagents_nb.ext.llms.messages import AssistantMessage, PromptLogMessage
from miniagents_nb.ext.llms.offline import Replayer, producer_for, stamp_request_key
from miniagents_nb.ext.llms.tool_formats import ToolCallResult
from miniagents_nb.ext.llms.tool_loop import DEFAULT_MAX_TURNS, ToolTurn, arun_tool_loop
from miniagents_nb.ext.llms.tools import ToolSet, make_tool_set
from miniagents_nb.messages import Message, MessageTokenAppender

__all__ = [
    "LEGACY_HOOK_NAMES",
    "LLMAgent",
    "SECRET_KWARGS",
    "LLMMiniAgent",
    "amessages_to_llm_dicts",
    "is_pydantic_model_class",
    "llm_miniagent",
    "message_to_llm_dict",
    "route_unknown_kwargs_to_extra_body",
    "thaw",
]


# --- the base class -------------------------------------------------------------------------------------------------


def _stream_by_default() -> bool:
    return bool(MiniAgents.get_current().stream_llm_tokens_by_default)


def _logger_by_default() -> Any:
    return MiniAgents.get_current().llm_logger_agent


def _loggable(value: Any, key: str) -> Any:
    if is_freezable(value, key):
        return value
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


class LLMAgent(BaseModel, ABC):
    """Base class of an LLM agent for any provider; wrap a subclass with `llm_miniagent` to get the agent.

    A provider overrides public hooks only: `aprepare_message_dicts()` (the conversation in the provider's shape)
    and `aproduce_tokens(message_dicts, token_appender)` (call the provider, append `str` tokens, put response
    metadata into `token_appender.auxiliary_field_collector`); optionally `after_response(collected)` (adjust that
    metadata), `translate_error(error)` (name the provider's failures), `request_metadata()` (what the logger
    writes) and the class method `prepare_fork_kwargs(kwargs)` (live values a fork or call gets). Unknown keyword
    arguments (`temperature`, `max_tokens`, ...) are kept as extra fields and passed to the SDK call as they are
    (`sdk_kwargs()`).

    Older names of the hooks (`LEGACY_HOOK_NAMES`: upstream MiniAgents' `_aprepare_message_dicts`,
    `_aproduce_tokens`, `_request_metadata_to_log`, and `_after_response`) are the same hooks: a subclass may
    override either name, and `super()` reaches the parent's hook by either name.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="allow")

    provider: ClassVar[str] = "llm"

    ctx: InteractionContext
    model: str | None = None
    stream: bool = Field(default_factory=_stream_by_default)
    system: str | None = None
    response_metadata: Any = None
    response_message_class: type[Message] = AssistantMessage
    response_format: Any = None
    llm_logger_agent: Any = Field(default_factory=_logger_by_default)
    tools: Any = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    max_turns: int = DEFAULT_MAX_TURNS
    stop_at_tools: Any = None
    tool_errors: str = "return"

    _tool_turn: ToolTurn | None = PrivateAttr(default=None)

    async def __call__(self) -> None:
        appender = MessageTokenAppender(capture_errors=True)
        appender.open()
        known_beforehand: dict[str, Any] = {"model": self.model, "agent_alias": self.ctx.this_agent.alias}
        known_beforehand.update(thaw(self.response_metadata) or {})
        response = self.response_message_class.promise(
            start_soon=False, message_token_streamer=appender, **known_beforehand
        )
        self.ctx.reply(response)
        await self.ctx.afinish_early()  # consumers see the one message promise (and its metadata) right away

        try:
            if self.model is None:
                raise InvalidArgumentsError(
                    f"{self.ctx.this_agent.alias} needs a model: fork the agent with model=... "
                    "(e.g. `OpenAIAgent.fork(model='gpt-4.1-mini')`) or pass model=... to trigger()."
                )
            message_dicts = await self.aprepare_message_dicts()
        except BaseException as error:  # an input failed: it reaches consumers unchanged, at the message
            appender.close(error)
            if not isinstance(error, Exception):
                raise
            return

        self._start_logging(message_dicts, response)
        producer: Any = self
        try:
            producer = producer_for(self)  # the fake or a run store's replay under the offline switches
            if isinstance(producer, Replayer):
                await producer.areplay(message_dicts, appender)
            elif isinstance(self.tools, ToolSet):
                await arun_tool_loop(producer, message_dicts, appender, response)
            else:
                await producer.aproduce_tokens(message_dicts, appender)
                producer.after_response(appender.auxiliary_field_collector)
            stamp_request_key(self, message_dicts, appender)
        except Exception as error:
            # Neither the error consumers get nor the provider's error it is chained to shows a credential.
            secrets = self.credential_strings()
            appender.close(scrub_error(producer.translate_error(scrub_error(error, secrets)), secrets))
        except BaseException as error:  # cancelled or interrupted: end the message with it, then let it propagate
            appender.close(error)
            raise
        else:
            appender.close()

    # --- the hooks a provider overrides --------------------------------------------------------------------------

    async def aprepare_message_dicts(self) -> list[dict[str, Any]]:
        """The conversation (this call's input plus `system`) in the provider's format."""
        raise _missing_hook(self, "async def aprepare_message_dicts(self) -> list[dict[str, Any]]")

    async def aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        """Call the provider; append every token (a `str`); collect response metadata in the appender's
        `auxiliary_field_collector`."""
        raise _missing_hook(self, "async def aproduce_tokens(self, message_dicts, token_appender) -> None")

    def after_response(self, collected: dict[str, Any]) -> None:
        """Adjust the response metadata before it lands on the final message. By default: keep what the provider
        said it served when it differs from what was asked (`model` stays the request's model, as it was known
        beforehand)."""
        served = collected.get("model")
        if isinstance(served, str) and served != self.model:
            collected["response_model"] = served

    @classmethod
    def prepare_fork_kwargs(cls, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Live (never frozen) values to add to a fork or a call given `kwargs`: Python `tools=` become a `ToolSet`
        here, so a bad tool fails at `fork()` / `trigger()`. (`FakeLLM` also gives a fork that gets `replies=` its
        own reply cursor; call `super()` to keep the tools.)"""
        tools = kwargs.get("tools")
        if tools is None or _provider_shaped(tools):
            return {}
        return {"tools": make_tool_set(tools)}

    # --- the hooks of tool calling (see `tool_loop.py`) ------------------------------------------------------------

    @property
    def tool_turn(self) -> ToolTurn | None:
        """The tool-loop turn being requested (None without Python tools): `aproduce_tokens` adds its `request` to
        the SDK call and reports every tool call the model streams to it."""
        return self._tool_turn

    def bind_tool_turn(self, turn: ToolTurn | None) -> None:
        """Set `tool_turn` (the loop does, around each request)."""
        self._tool_turn = turn

    def tool_request_kwargs(self, tools: ToolSet, tool_choice: Any, parallel_tool_calls: bool | None) -> dict[str, Any]:
        """The keyword arguments that offer `tools` to the provider (see `tool_formats.py`)."""
        raise _missing_hook(self, "def tool_request_kwargs(self, tools, tool_choice, parallel_tool_calls) -> dict")

    def tool_exchange_dicts(self, text: str, calls: Sequence[ToolCallResult]) -> list[dict[str, Any]]:
        """A turn's text, tool calls and results as the provider's messages (see `tool_formats.py`)."""
        raise _missing_hook(self, "def tool_exchange_dicts(self, text, calls) -> list[dict]")

    def extend_conversation(
        self, message_dicts: list[dict[str, Any]], new_dicts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The conversation of the next turn: by default the new messages at the end."""
        return [*message_dicts, *new_dicts]

    # The older names of the hooks are the same functions (subclasses get the aliases in __pydantic_init_subclass__).
    _aprepare_message_dicts = aprepare_message_dicts
    _aproduce_tokens = aproduce_tokens
    _after_response = after_response

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        own = vars(cls)
        for public, legacy in LEGACY_HOOK_NAMES.items():
            if legacy in own and public not in own:  # written against an older name: the engine calls the public one
                setattr(cls, public, own[legacy])
            elif public in own and legacy not in own:  # an older subclass's `super()._name()` must reach it too
                setattr(cls, legacy, own[public])

    # --- helpers for subclasses -------------------------------------------------------------------------------------

    def sdk_kwargs(self) -> dict[str, Any]:
        """The extra keyword arguments (`temperature`, `max_tokens`, ...) thawed back into plain dicts and lists;
        provider-shaped `tools` (dicts, no Python tools) pass through with their `tool_choice` and
        `parallel_tool_calls`."""
        kwargs = {key: thaw(value) for key, value in (self.model_extra or {}).items()}
        if not isinstance(self.tools, ToolSet):
            for key in ("tools", "tool_choice", "parallel_tool_calls"):
                value = getattr(self, key)
                if value is not None:
                    kwargs[key] = thaw(value)
        return kwargs

    def translate_error(self, error: Exception) -> Exception:
        """What consumers get instead of an SDK's own exception (an `LLMError`, see `llm_error_from`)."""
        return llm_error_from(error, provider=self.provider, model=self.model)

    def request_metadata(self) -> dict[str, Any]:
        """What the LLM logger writes about the request (live objects as their names)."""
        metadata: dict[str, Any] = {
            "agent_alias": self.ctx.this_agent.alias,
            "model": self.model,
            "stream": self.stream,
        }
        if self.response_format is not None:
            metadata["response_format"] = _loggable(self.response_format, "response_format")
        if isinstance(self.tools, ToolSet):
            metadata["tools"] = [tool.name for tool in self.tools]
        for key, value in (self.model_extra or {}).items():
            metadata[key] = _loggable(redact_argument(key, value), key)  # never a credential (see `credentials`)
        return metadata

    def credential_strings(self) -> list[str]:
        """The secrets this call's arguments carry (`api_key`, credential headers and query parameters, URL user
        info): scrubbed from the error the call may end with."""
        arguments = dict(self.model_extra or {})
        for name in ("api_key", "base_url", "default_headers", "default_query"):
            value = getattr(self, name, None)
            if value is not None:
                arguments[name] = value
        return credential_strings(arguments)

    _request_metadata_to_log = request_metadata

    def _start_logging(self, message_dicts: list[dict[str, Any]], response: Any) -> None:
        logger = self.llm_logger_agent
        if logger is True:
            from miniagents_nb.ext.agents.llm_logger_agents import markdown_llm_logger_agent

            logger = markdown_llm_logger_agent
        if not isinstance(logger, MiniAgent):
            return
        prompt = [
            PromptLogMessage(content=_log_text(message_dict.get("content")), role=str(message_dict.get("role", "user")))
            for message_dict in message_dicts
        ]
        self.ctx.make_sure_to_wait(logger.trigger([prompt, response], request_metadata=self.request_metadata()))


LEGACY_HOOK_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "aprepare_message_dicts": "_aprepare_message_dicts",  # upstream MiniAgents
        "aproduce_tokens": "_aproduce_tokens",  # upstream MiniAgents
        "request_metadata": "_request_metadata_to_log",  # upstream MiniAgents
        "after_response": "_after_response",  # this package before the public hooks
    }
)
"""`{public hook: its older name}`: overriding (or calling) the older name of an `LLMAgent` hook is the same as
using the public one."""


def _provider_shaped(tools: Any) -> bool:
    """Whether `tools` are the provider's own dicts (passed to the SDK as they are, no loop)."""
    items = tools.values() if isinstance(tools, Mapping) else tools
    try:
        return all(isinstance(item, Mapping) for item in items)
    except TypeError:
        return False


def _missing_hook(agent: LLMAgent, signature: str) -> AgentDefinitionError:
    return AgentDefinitionError(
        f"{type(agent).__name__} does not say how to talk to its provider: override `{signature}` "
        "(see `LLMAgent`'s docstring and docs/llms.md)."
    )


def _log_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones, and a mark for each image
        return "\n".join(_log_part(part) for part in content)
    return "" if content is None else str(content)


def _log_part(part: Any) -> str:
    if not isinstance(part, dict):
        return str(part)
    if "text" in part:
        return str(part["text"])
    return f"[{part.get('type', 'part')}]"  # an image: never its base64 bytes in a log
