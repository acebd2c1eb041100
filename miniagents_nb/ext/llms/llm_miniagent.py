"""`LLMMiniAgent` and `llm_miniagent`: the MiniAgent wrapper of the LLM agents, which takes live objects (SDK
clients, pydantic classes, callables, Python tools) as plain keyword arguments and keeps API keys out of frozen
arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

from miniagents_nb.agents import AgentCall, MiniAgent
from miniagents_nb.errors import NotFreezableError
from miniagents_nb.ext.llms.credentials import CREDENTIAL_CARRIERS, redact_argument
from miniagents_nb.messages import MessageSequencePromise, MessageType
from miniagents_nb.promising.ext.frozen import Frozen, freeze_value
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["SECRET_KWARGS", "LLMMiniAgent", "is_freezable", "llm_miniagent"]


def is_freezable(value: Any, key: str) -> bool:
    try:
        freeze_value(value, "an LLM agent", key)
    except NotFreezableError:
        return False
    return True


SECRET_KWARGS = frozenset({"api_key"})
"""Arguments never frozen: frozen arguments of a call are persisted and shown in the notebook views."""


def _split_live_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(live, freezable): secrets and values that cannot be frozen (SDK clients, pydantic classes, callables) vs
    the rest. An argument that carries a credential inside it (a header, a query parameter, a URL: see
    `credentials`) is in both: the real value live (it is what the request uses), a redacted copy to freeze (what
    call nodes, the run store, views and logs see)."""
    live: dict[str, Any] = {}
    freezable: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in SECRET_KWARGS or not is_freezable(value, key):
            live[key] = value
            continue
        shown = redact_argument(key, value) if key in CREDENTIAL_CARRIERS else value
        if shown is not value:
            live[key] = value
        freezable[key] = shown
    return live, freezable


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

    def _split(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        live, freezable = _split_live_kwargs(kwargs)
        for key, value in self._fork_hook_kwargs(kwargs).items():  # what the hook made live is live only
            live[key] = value
            freezable.pop(key, None)
        return live, freezable

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
        live, freezable = self._split(kwargs_to_freeze)
        forked = super().fork(
            alias,
            description,
            interaction_metadata=interaction_metadata,
            non_freezable_kwargs={**(non_freezable_kwargs or {}), **live},
            **freezable,
        )
        # A newly frozen value overrides an older live value of the same name.
        overridden = [
            key
            for key in freezable
            if key not in live and (non_freezable_kwargs is None or key not in non_freezable_kwargs)
        ]
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
        live, freezable = self._split(kwargs)
        if not live:
            return self, freezable
        # A per-call fork carries the live values: the call's frozen kwargs (persisted with the call) stay clean.
        # The redacted copy of a credential-carrying argument goes with it (as the fork's frozen value, which its
        # live value overrides when the agent runs): in the call's own kwargs it would override the real one.
        shown = {key: freezable.pop(key) for key in list(freezable) if key in live}
        return MiniAgent.fork(self, non_freezable_kwargs=live, **shown), freezable


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
