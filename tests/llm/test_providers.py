"""The LLM provider registry: one `register_provider` call adds a provider `default_llm_agent()` can pick."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext.llms import default_llm_agent
from miniagents_nb.ext.llms.default_llm import DEFAULT_MODELS, default_llm_provider
from miniagents_nb.ext.llms.errors import LLMAuthenticationError, llm_error_from, provider_display_name
from miniagents_nb.ext.llms.providers import (
    _PROVIDERS,
    LLMProvider,
    get_provider,
    register_provider,
    registered_providers,
)


@pytest.fixture
def custom_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMProvider]:
    before = dict(_PROVIDERS)
    provider = register_provider(
        LLMProvider(
            "acme",
            "Acme Cloud",
            "miniagents_nb.ext.llms.fake.FakeLLMAgent",  # any LLMMiniAgent; the fake one runs offline
            "acme-small",
            "ACME_API_KEY",
        )
    )
    monkeypatch.delenv("MINIAGENTS_NB_LLM", raising=False)
    for other in before.values():
        if other.api_key_env:
            monkeypatch.delenv(other.api_key_env, raising=False)
    yield provider
    _PROVIDERS.clear()
    _PROVIDERS.update(before)


def test_the_built_in_providers_are_registered() -> None:
    assert [provider.name for provider in registered_providers()][:3] == ["openai", "anthropic", "fake"]
    assert dict(DEFAULT_MODELS)["fake"] == "fake-llm"
    assert get_provider("OpenAI").display_name == "OpenAI"


def test_a_registered_provider_is_picked_by_its_key(
    custom_provider: LLMProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_llm_provider() == "fake"
    monkeypatch.setenv("ACME_API_KEY", "secret")
    assert default_llm_provider() == "acme"
    agent = default_llm_agent(replies=["scripted"])
    assert agent.frozen_kwargs["model"] == "acme-small"
    assert "replies" not in agent.frozen_kwargs  # a keyed provider is not the offline fake
    assert DEFAULT_MODELS["acme"] == "acme-small"


def test_a_registered_provider_is_picked_by_name(custom_provider: LLMProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "ACME")
    assert default_llm_provider() == "acme"
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "nope")
    with pytest.raises(InvalidArgumentsError, match="'acme'"):
        default_llm_provider()


def test_errors_name_a_registered_provider(custom_provider: LLMProvider) -> None:
    class FakeStatusError(Exception):
        status_code = 401

    assert provider_display_name("acme") == "Acme Cloud"
    translated = llm_error_from(FakeStatusError("denied"), provider="acme")
    assert isinstance(translated, LLMAuthenticationError)
    assert "Acme Cloud" in str(translated)
    assert "ACME_API_KEY" in str(translated)


def test_provider_names_are_lower_case() -> None:
    with pytest.raises(InvalidArgumentsError, match="lower-case"):
        register_provider(LLMProvider("Acme", "Acme", "x.y", "m"))


def test_our_own_bug_is_not_called_a_malformed_response() -> None:
    def buggy() -> None:
        empty: dict[str, int] = {}
        empty["missing"]  # a KeyError raised by this test module, i.e. not by an SDK or parser

    try:
        buggy()
    except KeyError as error:
        own = error
    # The test module is not part of the package, so re-raise it from package code to model a bug of ours.
    from miniagents_nb.ext.llms import llm_utils

    namespace = {"__name__": llm_utils.__name__}
    exec("def fail():\n    raise KeyError('missing')", namespace)
    try:
        namespace["fail"]()  # type: ignore[operator]
    except KeyError as error:
        ours = error
    assert llm_error_from(ours, provider="openai") is ours
    assert llm_error_from(own, provider="openai") is not own  # raised outside the package: a response problem
