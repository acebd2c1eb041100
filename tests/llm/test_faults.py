"""Provider failures with the official SDKs against the local server: each becomes a clear `LLMError` (status,
provider, message) at the message's position, or an `ErrorMessage` under `errors_as_messages`; the SDK's retries
(and the server's retry-after) are honoured; nothing hangs.
"""

from __future__ import annotations

import logging
import pickle
import sys
import time
from typing import Any

import pytest

from miniagents_nb import ErrorMessage, InteractionContext, MessagePromise, MiniAgents, miniagent
from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.ext.llms import (
    AnthropicAgent,
    LLMAuthenticationError,
    LLMConnectionError,
    LLMDependencyError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
    OpenAIAgent,
)

from .servers import AnthropicStream, HTTPError, LLMTestServer, OpenAIStream, Stall

PROVIDERS = ["openai", "anthropic"]
KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def agent_for(provider: str, **kwargs: Any) -> Any:
    if provider == "openai":
        return OpenAIAgent.fork(model="gpt-4.1-mini", **kwargs)
    return AnthropicAgent.fork(model="claude-haiku-4-5", **kwargs)


def stream_for(provider: str, tokens: list[str], **kwargs: Any) -> Any:
    return OpenAIStream(tokens, **kwargs) if provider == "openai" else AnthropicStream(tokens, **kwargs)


async def only_promise(sequence: Any) -> MessagePromise:
    promises: list[MessagePromise] = [promise async for promise in sequence]
    assert len(promises) == 1
    return promises[0]


async def failure_of(agent: Any, **trigger_kwargs: Any) -> tuple[list[str], BaseException]:
    """Tokens received before the failure, and the failure (raised at the message, the sequence itself is fine)."""
    promise = await only_promise(agent.trigger("question", **trigger_kwargs))
    tokens: list[str] = []

    async def consume() -> None:
        async for token in promise:
            tokens.append(token)

    with pytest.raises(LLMError) as iteration_error:
        await consume()
    with pytest.raises(LLMError) as await_error:
        await promise
    assert await_error.value is iteration_error.value
    return tokens, iteration_error.value


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_401_is_an_authentication_error_at_the_message(
    llm_server: LLMTestServer, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm_server.enqueue(HTTPError(401, "Invalid API key provided", error_type="authentication_error"))
    with caplog.at_level(logging.ERROR, logger="miniagents_nb"):
        async with MiniAgents():
            tokens, error = await failure_of(agent_for(provider, max_retries=0))
    assert isinstance(error, LLMAuthenticationError)
    assert isinstance(error, MiniAgentsError)
    assert (error.status, error.provider) == (401, provider)
    assert "Invalid API key provided" in error.message
    assert KEY_VARIABLES[provider] in error.message  # says what to do
    assert str(error) == error.message
    assert tokens == []
    assert len(llm_server.requests) == 1  # a 401 is not retried
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []  # the agent did not fail


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_with_retry_after_is_retried_after_the_servers_delay(
    llm_server: LLMTestServer, provider: str
) -> None:
    llm_server.enqueue(HTTPError(429, "Rate limit reached", {"retry-after-ms": "20"}, error_type="rate_limit_error"))
    started = time.monotonic()
    async with MiniAgents():
        message = (await agent_for(provider, max_retries=2).trigger("question"))[0]
    elapsed = time.monotonic() - started
    assert message.content == "Hello from the test server."
    assert len(llm_server.requests) == 2
    assert [request.headers["x-stainless-retry-count"] for request in llm_server.requests] == ["0", "1"]
    assert elapsed < 0.35  # the SDK's own backoff would wait at least 0.375 s: the server's 20 ms were used


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_after_the_last_retry_is_a_rate_limit_error(llm_server: LLMTestServer, provider: str) -> None:
    rate_limited = HTTPError(429, "Rate limit reached", {"retry-after-ms": "5"}, error_type="rate_limit_error")
    llm_server.enqueue(rate_limited, rate_limited)
    async with MiniAgents():
        _, error = await failure_of(agent_for(provider, max_retries=1))
    assert isinstance(error, LLMRateLimitError)
    assert (error.status, error.provider, error.retry_after) == (429, provider, 0.005)
    assert "after 1 retry" in error.message
    assert "Rate limit reached" in error.message
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_500_is_retried_then_a_server_error(llm_server: LLMTestServer, provider: str) -> None:
    broken = HTTPError(500, "The server had an error", {"retry-after-ms": "5"})
    llm_server.enqueue(broken, broken, broken)
    async with MiniAgents():
        _, error = await failure_of(agent_for(provider, max_retries=2))
    assert isinstance(error, LLMServerError)
    assert (error.status, error.provider) == (500, provider)
    assert "after 2 retries" in error.message
    assert len(llm_server.requests) == 3

    llm_server.enqueue(broken)
    async with MiniAgents():
        message = (await agent_for(provider, max_retries=1).trigger("again"))[0]
    assert message.content == "Hello from the test server."


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_timeout_is_a_timeout_error_quickly(llm_server: LLMTestServer, provider: str) -> None:
    llm_server.enqueue(Stall())
    started = time.monotonic()
    async with MiniAgents():
        _, error = await failure_of(agent_for(provider, max_retries=0, timeout=0.3))
    assert isinstance(error, LLMTimeoutError)
    assert (error.status, error.provider) == (None, provider)
    assert "within 0.3 s" in error.message
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_cut_mid_way_fails_after_the_tokens_that_arrived(
    llm_server: LLMTestServer, provider: str
) -> None:
    llm_server.enqueue(stream_for(provider, ["one", " two", " three", " four"], cut_after=2))
    async with MiniAgents():
        tokens, error = await failure_of(agent_for(provider))
    assert tokens == ["one", " two"]
    assert isinstance(error, LLMConnectionError)
    assert error.provider == provider
    assert "before the response was complete" in error.message


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_malformed_chunk_is_a_response_error(llm_server: LLMTestServer, provider: str) -> None:
    llm_server.enqueue(stream_for(provider, ["one", " two", " three"], malformed_after=1))
    async with MiniAgents():
        tokens, error = await failure_of(agent_for(provider))
    assert tokens == ["one"]
    assert isinstance(error, LLMResponseError)
    assert "malformed response" in error.message


async def test_an_openai_stream_that_ends_without_a_finish_reason_is_incomplete(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(OpenAIStream(["partial"], send_finish=False))
    async with MiniAgents():
        tokens, error = await failure_of(agent_for("openai"))
    assert tokens == ["partial"]
    assert isinstance(error, LLMConnectionError)
    assert "no chunk had a finish_reason" in error.message


async def test_an_error_event_inside_an_openai_stream(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(OpenAIStream([], raw_chunks=[{"error": {"message": "The model is overloaded mid-stream"}}]))
    async with MiniAgents():
        _, error = await failure_of(agent_for("openai"))
    assert isinstance(error, LLMError)
    assert "The model is overloaded mid-stream" in error.message


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_errors_as_messages_puts_an_error_message_at_the_position(
    llm_server: LLMTestServer, provider: str
) -> None:
    llm_server.enqueue(HTTPError(429, "Too many requests", error_type="rate_limit_error"))
    llm = agent_for(provider, max_retries=0)

    @miniagent
    async def research(ctx: InteractionContext) -> None:
        ctx.reply(["before", llm.trigger("question"), "after"])

    async with MiniAgents(errors_as_messages=True):
        messages = await research.trigger()
    assert [type(message).__name__ for message in messages] == ["TextMessage", "ErrorMessage", "TextMessage"]
    error_message = messages[1]
    assert isinstance(error_message, ErrorMessage)
    assert str(error_message).startswith("\nLLMRateLimitError: ")
    assert "Too many requests" in str(error_message)
    assert (str(messages[0]), str(messages[2])) == ("before", "after")


@pytest.mark.usefixtures("real_llms")
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_unreachable_server_is_a_connection_error(provider: str) -> None:
    """No local server at all (the autouse fixture points the SDKs at a closed port): it fails at once."""
    async with MiniAgents():
        _, error = await failure_of(agent_for(provider, max_retries=0))
    assert isinstance(error, LLMConnectionError)
    assert "127.0.0.1:9" in error.message or "connection" in error.message.lower()


@pytest.mark.usefixtures("real_llms")
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_missing_api_key_says_which_variable_to_set(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_VARIABLES[provider])
    monkeypatch.delenv("OPENAI_BASE_URL")  # with a custom server and no key, a placeholder key would be sent
    async with MiniAgents():
        _, error = await failure_of(agent_for(provider, max_retries=0))
    assert isinstance(error, LLMAuthenticationError)
    assert KEY_VARIABLES[provider] in error.message
    assert "FakeLLMAgent" in error.message


@pytest.mark.usefixtures("real_llms")
@pytest.mark.parametrize(("provider", "module"), [("openai", "openai"), ("anthropic", "anthropic")])
async def test_a_missing_sdk_names_the_extra_to_install(
    provider: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import openai` now raises ImportError
    async with MiniAgents():
        _, error = await failure_of(agent_for(provider))
    assert isinstance(error, LLMDependencyError)
    assert isinstance(error, ImportError)
    assert f"miniagents-nb[{provider}]" in error.message


def test_llm_errors_pickle_with_their_attributes() -> None:
    error = LLMRateLimitError("slow down", provider="openai", status=429, retry_after=1.5, model="m")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is LLMRateLimitError
    assert (copy.message, copy.provider, copy.status, copy.retry_after, copy.model) == (
        "slow down",
        "openai",
        429,
        1.5,
        "m",
    )
