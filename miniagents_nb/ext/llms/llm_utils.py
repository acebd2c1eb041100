"""The provider-independent half of the LLM agents: `LLMAgent`, `LLMMiniAgent`, message conversion.

An LLM agent call replies exactly one message promise, right away, with what is known before the provider is even
called (`model`, `agent_alias`, `response_metadata`) as `known_beforehand`, and closes its reply sequence. Only then
does it read its input, call the provider and push the tokens into the promise as plain `str`s. Everything the
provider says about the response (usage, stop reason, ids) is collected on the side and lands on the final message;
a failure lands in the token stream, so consumers meet it exactly where the message is.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, overload

from pydantic import BaseModel, ConfigDict, Field

from miniagents_nb.agents import AgentCall, InteractionContext, MiniAgent, MiniAgents
from miniagents_nb.errors import AgentDefinitionError, InvalidArgumentsError, NotFreezableError
from miniagents_nb.ext.llms.conversion import (
    amessages_to_llm_dicts,
    is_pydantic_model_class,
    message_to_llm_dict,
    route_unknown_kwargs_to_extra_body,
    thaw,
)
from miniagents_nb.ext.llms.errors import llm_error_from
from miniagents_nb.ext.llms.messages import AssistantMessage, PromptLogMessage
from miniagents_nb.messages import (
    Message,
    MessageSequencePromise,
    MessageTokenAppender,
    MessageType,
)
from miniagents_nb.promising.ext.frozen import Frozen, freeze_value
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

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


def _is_freezable(value: Any, key: str) -> bool:
    try:
        freeze_value(value, "an LLM agent", key)
    except NotFreezableError:
        return False
    return True


SECRET_KWARGS = frozenset({"api_key"})
"""Arguments never frozen: frozen arguments of a call are persisted and shown in the notebook views."""


def _split_live_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(live, freezable): secrets and values that cannot be frozen (SDK clients, pydantic classes, callables) vs
    the rest."""
    live: dict[str, Any] = {}
    freezable: dict[str, Any] = {}
    for key, value in kwargs.items():
        (freezable if key not in SECRET_KWARGS and _is_freezable(value, key) else live)[key] = value
    return live, freezable


# --- the MiniAgent wrapper ------------------------------------------------------------------------------------------


class LLMMiniAgent(MiniAgent):
    """A MiniAgent that also takes live objects as plain keyword arguments.

    `OpenAIAgent.fork(async_client=client)`, `.trigger(..., response_format=MyModel)` or
    `FakeLLMAgent.fork(reply_fn=func)` pass values that can never be frozen; a plain MiniAgent refuses them (they
    would have to go through `non_freezable_kwargs=`). Here such values are routed into the non-freezable
    arguments automatically, with the usual precedence: a later fork or the trigger call wins. So is `api_key`,
    so that a key never lands in persisted agent calls or in notebook views. Everything else is frozen as usual.
    Forks stay `LLMMiniAgent`s.
    """

    def _fork_hook_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        # `LLMAgent.prepare_fork_kwargs` (a function-style LLM agent has none).
        hook: Callable[[Mapping[str, Any]], dict[str, Any]] | None = getattr(
            self.wrapped_func_or_class, "prepare_fork_kwargs", None
        )
        return hook(kwargs) if hook is not None else {}

    def fork(
        self,
        alias: str | None = None,
        description: str | None = None,
        *,
        interaction_metadata: dict[str, Any] | Frozen | None = None,
        non_freezable_kwargs: dict[str, Any] | None = None,
        **kwargs_to_freeze: Any,
    ) -> LLMMiniAgent:
        """A variant of this agent (live objects among the kwargs are kept unfrozen)."""
        live, freezable = _split_live_kwargs(kwargs_to_freeze)
        live.update(self._fork_hook_kwargs(kwargs_to_freeze))
        forked = super().fork(
            alias,
            description,
            interaction_metadata=interaction_metadata,
            non_freezable_kwargs={**(non_freezable_kwargs or {}), **live},
            **freezable,
        )
        # A newly frozen value overrides an older live value of the same name.
        overridden = [key for key in freezable if non_freezable_kwargs is None or key not in non_freezable_kwargs]
        if overridden and any(key in forked.non_freezable_kwargs for key in overridden):
            forked = forked.without_non_freezable_kwargs(*overridden)
        return _as_llm_miniagent(forked)

    def trigger(
        self,
        messages: MessageType | None = None,
        *,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        start_asap: bool | Sentinel = NO_VALUE,
        **kwargs_to_freeze: Any,
    ) -> MessageSequencePromise:
        """Call the agent (live objects among the kwargs apply to this call only)."""
        target, freezable = self._for_call(kwargs_to_freeze)
        return MiniAgent.trigger(
            target,
            messages,
            start_soon=start_soon,
            errors_as_messages=errors_as_messages,
            start_asap=start_asap,
            **freezable,
        )

    def initiate_call(
        self,
        *,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        start_asap: bool | Sentinel = NO_VALUE,
        **kwargs_to_freeze: Any,
    ) -> AgentCall:
        """Open a call whose input is sent over time (live objects among the kwargs apply to this call only)."""
        target, freezable = self._for_call(kwargs_to_freeze)
        return MiniAgent.initiate_call(
            target,
            start_soon=start_soon,
            errors_as_messages=errors_as_messages,
            start_asap=start_asap,
            **freezable,
        )

    def _for_call(self, kwargs: dict[str, Any]) -> tuple[MiniAgent, dict[str, Any]]:
        live, freezable = _split_live_kwargs(kwargs)
        live.update(self._fork_hook_kwargs(kwargs))
        if not live:
            return self, freezable
        # A per-call fork carries the live values: the call's frozen kwargs (persisted with the call) stay clean.
        return MiniAgent.fork(self, non_freezable_kwargs=live), freezable


def _as_llm_miniagent(agent: MiniAgent) -> LLMMiniAgent:
    # MiniAgent.fork() always builds a plain MiniAgent; the subclass adds behaviour only (no fields, same layout),
    # so switching the class keeps every field and private attribute exactly as the core made them.
    object.__setattr__(agent, "__class__", LLMMiniAgent)
    return agent  # type: ignore[return-value]


@overload
def llm_miniagent(func_or_class: None = None, /, **options: Any) -> Callable[[Any], LLMMiniAgent]: ...
@overload
def llm_miniagent(func_or_class: type | Callable[..., Any], /, **options: Any) -> LLMMiniAgent: ...
def llm_miniagent(
    func_or_class: type | Callable[..., Any] | None = None, /, **options: Any
) -> LLMMiniAgent | Callable[[Any], LLMMiniAgent]:
    """`@miniagent` for LLM agents: the result is an `LLMMiniAgent` (usable bare or with options, which are
    `@miniagent`'s plus the call's defaults: `model=`, `temperature=`, live objects such as `async_client=`)."""
    if func_or_class is None:
        return lambda target: llm_miniagent(target, **options)
    live, freezable = _split_live_kwargs(
        {key: value for key, value in options.items() if key not in _MINIAGENT_OPTIONS}
    )
    plain_options = {key: value for key, value in options.items() if key in _MINIAGENT_OPTIONS}
    if live:
        plain_options["non_freezable_kwargs"] = {**plain_options.get("non_freezable_kwargs", {}), **live}
    return _as_llm_miniagent(MiniAgent(func_or_class, **plain_options, **freezable))


_MINIAGENT_OPTIONS = frozenset(
    {
        "alias",
        "description",
        "normalize_func_or_class_name",
        "normalize_spaces_in_docstring",
        "await_reply_persistence",
        "interaction_metadata",
        "non_freezable_kwargs",
    }
)


# --- the base class -------------------------------------------------------------------------------------------------


def _stream_by_default() -> bool:
    return bool(MiniAgents.get_current().stream_llm_tokens_by_default)


def _logger_by_default() -> Any:
    return MiniAgents.get_current().llm_logger_agent


def _loggable(value: Any, key: str) -> Any:
    if _is_freezable(value, key):
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
        try:
            await self.aproduce_tokens(message_dicts, appender)
            self.after_response(appender.auxiliary_field_collector)
        except Exception as error:
            appender.close(self.translate_error(error))
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
        """Live (never frozen) values to add to a fork or a call given `kwargs`; by default none. (`FakeLLM` gives
        a fork that gets `replies=` its own reply cursor.)"""
        return {}

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
        """The extra keyword arguments (`temperature`, `max_tokens`, ...) thawed back into plain dicts and lists."""
        return {key: thaw(value) for key, value in (self.model_extra or {}).items()}

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
        for key, value in (self.model_extra or {}).items():
            metadata[key] = _loggable(value, key)
        return metadata

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


def _missing_hook(agent: LLMAgent, signature: str) -> AgentDefinitionError:
    return AgentDefinitionError(
        f"{type(agent).__name__} does not say how to talk to its provider: override `{signature}` "
        "(see `LLMAgent`'s docstring and docs/llms.md)."
    )


def _log_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "\n".join(str(part.get("text", part)) if isinstance(part, dict) else str(part) for part in content)
    return "" if content is None else str(content)
