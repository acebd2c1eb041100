"""The LLM provider registry: what `default_llm_agent()` can pick, and how errors name each provider.

Adding a provider is one call: implement an `LLMAgent` subclass (`aprepare_message_dicts`, `aproduce_tokens`),
wrap it with `llm_miniagent`, and `register_provider(LLMProvider(name=..., agent="package.module.MyAgent", ...))`.
The agent is named by dotted path and imported only when it is picked, so registering a provider whose SDK is not
installed costs nothing until someone asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from miniagents_nb.compat import resolve
from miniagents_nb.errors import InvalidArgumentsError

__all__ = [
    "DEFAULT_MODELS",
    "LLMProvider",
    "OFFLINE_SWITCHES",
    "api_key_env",
    "display_name",
    "get_provider",
    "pick_provider",
    "register_provider",
    "registered_providers",
]


@dataclass(frozen=True)
class LLMProvider:
    """One LLM backend."""

    name: str
    """How users and `MINIAGENTS_NB_LLM` name it (lower case), and the `provider` of its `LLMError`s."""
    display_name: str
    """How messages name it ("OpenAI")."""
    agent: str
    """Dotted path of its `LLMMiniAgent`, imported when picked."""
    default_model: str
    """The model it gets when neither `model=` nor `MINIAGENTS_NB_LLM_MODEL` says otherwise."""
    api_key_env: str | None = None
    """The environment variable holding its API key: set, it makes `default_llm_agent()` pick this provider."""
    offline: bool = False
    """Runs with no key and no network (the fake LLM): the fallback when no key is set."""

    def load_agent(self) -> Any:
        """The provider's agent (its module is imported now)."""
        return resolve(self.agent)


_PROVIDERS: dict[str, LLMProvider] = {}

OFFLINE_SWITCHES = ("fake", "replay")
"""The values of `MINIAGENTS_NB_LLM` that take every LLM agent offline (`miniagents_nb.ext.llms.offline`): `fake`
answers with the offline fake LLM, `replay` with the replies a run store recorded."""


def register_provider(provider: LLMProvider) -> LLMProvider:
    """Add (or replace, by name) a provider; providers with keys are picked in registration order."""
    if not provider.name or provider.name != provider.name.lower():
        raise InvalidArgumentsError(f"A provider name must be a non-empty lower-case word, got {provider.name!r}.")
    _PROVIDERS[provider.name] = provider
    return provider


def registered_providers() -> tuple[LLMProvider, ...]:
    """Every provider, in registration order."""
    return tuple(_PROVIDERS.values())


def get_provider(name: str) -> LLMProvider:
    """The provider called `name` (case-insensitive)."""
    provider = _PROVIDERS.get(name.strip().lower())
    if provider is None:
        known = ", ".join(repr(known_name) for known_name in _PROVIDERS)
        raise InvalidArgumentsError(f"{name!r} is not a known LLM provider: use one of {known}.")
    return provider


def pick_provider() -> LLMProvider:
    """`MINIAGENTS_NB_LLM` if it names a provider; else the first provider whose API key is set; else the offline one.

    Of the offline switches, `fake` names the fake LLM's provider; `replay` picks as if it were unset (by the keys
    that are set, else the offline fake), because replay answers as the provider that recorded the run: replaying
    a run recorded with OpenAI needs `OPENAI_API_KEY` set (any value: nothing is sent) or an explicit agent."""
    choice = os.environ.get("MINIAGENTS_NB_LLM", "").strip().lower()
    if choice and choice != "replay":
        if choice not in _PROVIDERS:
            known = ", ".join(repr(known_name) for known_name in dict.fromkeys((*_PROVIDERS, *OFFLINE_SWITCHES)))
            raise InvalidArgumentsError(
                f"MINIAGENTS_NB_LLM={choice!r} is not a known LLM or offline switch: set it to one of {known} "
                "(or unset it to pick by the API keys that are set)."
            )
        return _PROVIDERS[choice]
    for provider in _PROVIDERS.values():
        if provider.api_key_env and os.environ.get(provider.api_key_env):
            return provider
    for provider in _PROVIDERS.values():
        if provider.offline:
            return provider
    raise InvalidArgumentsError("No LLM provider can run here: set an API key, or register an offline provider.")


def display_name(provider: str) -> str:
    """`openai` -> `OpenAI` (unknown names as they are)."""
    known = _PROVIDERS.get(provider)
    return known.display_name if known is not None else provider


def api_key_env(provider: str) -> str:
    """The API key variable messages should point to (`<NAME>_API_KEY` for providers that do not say)."""
    known = _PROVIDERS.get(provider)
    if known is not None and known.api_key_env:
        return known.api_key_env
    return f"{provider.upper()}_API_KEY"


class _DefaultModels(Mapping[str, str]):
    """A live `{provider name: default model}` view of the registry."""

    def __getitem__(self, name: str) -> str:
        return get_provider(name).default_model

    def __iter__(self) -> Iterator[str]:
        return iter(list(_PROVIDERS))

    def __len__(self) -> int:
        return len(_PROVIDERS)

    def __repr__(self) -> str:
        return repr(dict(self))


DEFAULT_MODELS: Mapping[str, str] = _DefaultModels()
"""The model each provider gets by default (a live view of the registry)."""

register_provider(
    LLMProvider("openai", "OpenAI", "miniagents_nb.ext.llms.openai.OpenAIAgent", "gpt-4.1-mini", "OPENAI_API_KEY")
)
register_provider(
    LLMProvider(
        "anthropic",
        "Anthropic",
        "miniagents_nb.ext.llms.anthropic.AnthropicAgent",
        "claude-haiku-4-5",
        "ANTHROPIC_API_KEY",
    )
)
register_provider(
    LLMProvider("fake", "The fake LLM", "miniagents_nb.ext.llms.fake.FakeLLMAgent", "fake-llm", offline=True)
)
