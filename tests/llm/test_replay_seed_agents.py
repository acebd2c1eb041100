"""Replay covers the seeds' names and explicit OpenAI-compatible forks: `openai_agent` / `anthropic_agent` (and the
earliest README's `create_openai_agent`), recorded through the official SDKs against the local protocol server,
answer again under `MINIAGENTS_NB_LLM=replay` + `MINIAGENTS_NB_RUNS=path` once that server is gone; an
`OpenAIAgent.fork(base_url=...)` pointed at an OpenAI-compatible server records and replays the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.ext.llm.anthropic import anthropic_agent
from miniagents_nb.ext.llm.openai import create_openai_agent, openai_agent
from miniagents_nb.ext.llms import AnthropicMessage, OpenAIAgent, OpenAIMessage
from miniagents_nb.runs import RunStore

from .conftest import CLOSED_PORT_URL
from .servers import AnthropicStream, LLMTestServer, OpenAIStream

SEED_TOKENS = [["I am", " fine", "."], ["Bien", ", merci"], ["Forty", "-two"]]


async def _streamed(reply: Any) -> tuple[list[Any], list[list[str]]]:
    """The reply's messages and each one's tokens, as a consumer of the stream saw them."""
    messages: list[Any] = []
    tokens: list[list[str]] = []
    async for promise in reply:
        tokens.append([token async for token in promise])
        messages.append(await promise)
    return messages, tokens


async def _seed_conversation() -> tuple[list[Any], list[list[str]]]:
    """What the seeds' README does: fork the function-style agents and `inquire` with per-call settings."""
    gpt = openai_agent.fork(model="gpt-4o-2024-05-13")
    claude = anthropic_agent.fork(model="claude-3-5-haiku-latest", max_tokens=100)
    old_style = create_openai_agent(model="gpt-4")
    messages: list[Any] = []
    tokens: list[list[str]] = []
    asks: tuple[
        Callable[[], Any], ...
    ] = (  # one after the other: the server answers its script in the order the requests arrive
        lambda: gpt.inquire(
            "Hello, how are you?", system="You are a helpful assistant.", max_tokens=50, temperature=0.7
        ),
        lambda: claude.inquire("Comment vas-tu ?", system="Réponds en français."),
        lambda: old_style.inquire("What is the answer?"),
    )
    for ask in asks:
        got, got_tokens = await _streamed(ask())
        messages.extend(got)
        tokens.extend(got_tokens)
    return messages, tokens


async def test_the_seeds_agents_replay_from_the_environment_with_no_server(
    llm_server: LLMTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite"
    llm_server.enqueue(
        OpenAIStream(SEED_TOKENS[0]),
        AnthropicStream(SEED_TOKENS[1], input_tokens=9, output_tokens=2),
        OpenAIStream(SEED_TOKENS[2]),
    )
    with RunStore(path) as store:
        async with MiniAgents(record_to=store):
            recorded, recorded_tokens = await _seed_conversation()
        run = store.load(store.runs()[0].run_id)
    assert recorded_tokens == SEED_TOKENS
    openai_path, anthropic_path = "/v1/chat/completions", "/v1/messages"
    assert [request.path for request in llm_server.requests] == [openai_path, anthropic_path, openai_path]
    assert [request.json["model"] for request in llm_server.requests] == [
        "gpt-4o-2024-05-13",
        "claude-3-5-haiku-latest",
        "gpt-4",
    ]
    assert [(call.alias, [request.provider for request in call.llm_requests]) for call in run.roots] == [
        ("OPENAI_AGENT", ["openai"]),
        ("ANTHROPIC_AGENT", ["anthropic"]),
        ("OPENAI_AGENT", ["openai"]),
    ]
    assert all(request.request_key for call in run.roots for request in call.llm_requests)

    served = len(llm_server.requests)
    llm_server.stop()  # nothing answers any more, wherever the SDKs look
    monkeypatch.setenv("OPENAI_BASE_URL", f"{CLOSED_PORT_URL}/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "replay")
    monkeypatch.setenv("MINIAGENTS_NB_RUNS", str(path))
    async with MiniAgents():
        replayed, replayed_tokens = await _seed_conversation()
    assert len(llm_server.requests) == served

    assert replayed_tokens == recorded_tokens
    assert [type(message) for message in replayed] == [OpenAIMessage, AnthropicMessage, OpenAIMessage]
    for original, again in zip(recorded, replayed, strict=True):
        assert again == original
        assert again.hash_key == original.hash_key
        assert again.usage == original.usage
    assert replayed[1].stop_reason == recorded[1].stop_reason
    assert replayed[0].choices[0].finish_reason == recorded[0].choices[0].finish_reason


async def test_an_openai_compatible_fork_with_a_base_url_records_and_replays(
    llm_server: LLMTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork names its server; the SDKs' default (`OPENAI_BASE_URL`) points elsewhere and is never asked."""
    path = tmp_path / "runs.sqlite"
    compatible = LLMTestServer().start()  # an OpenAI-compatible server of its own (vLLM, Ollama, ...)
    try:
        compatible.enqueue(OpenAIStream(["Local", " model", " here"]), OpenAIStream(["Still", " local"]))

        def local_llm(base_url: str) -> Any:
            return OpenAIAgent.fork(model="llama-3.1-8b-instruct", base_url=base_url, api_key="local-key", seed=7)

        async def conversation(base_url: str) -> tuple[list[Any], list[list[str]]]:
            first, first_tokens = await _streamed(local_llm(base_url).trigger("Who are you?"))
            second, second_tokens = await _streamed(local_llm(base_url).trigger(["Who are you?", *first, "And?"]))
            return [*first, *second], [*first_tokens, *second_tokens]

        with RunStore(path) as store:
            async with MiniAgents(record_to=store):
                recorded, recorded_tokens = await conversation(compatible.openai_base_url)
            run = store.load(store.runs()[0].run_id)
        assert recorded_tokens == [["Local", " model", " here"], ["Still", " local"]]
        assert [request.path for request in compatible.requests] == ["/v1/chat/completions"] * 2
        assert [request.json["model"] for request in compatible.requests] == ["llama-3.1-8b-instruct"] * 2
        assert compatible.requests[0].headers["authorization"] == "Bearer local-key"
        assert llm_server.requests == []  # the default base URL was not used
        [request] = run.roots[0].llm_requests
        assert (request.provider, request.model) == ("openai", "llama-3.1-8b-instruct")
        assert request.parameters.get("seed") == 7
        assert request.request_key
        base_url = compatible.openai_base_url
    finally:
        compatible.stop()

    served = len(compatible.requests)
    async with MiniAgents(replay_from=path):
        replayed, replayed_tokens = await conversation(base_url)  # the same fork, its server gone
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "replay")
    monkeypatch.setenv("MINIAGENTS_NB_RUNS", str(path))
    async with MiniAgents():
        elsewhere, elsewhere_tokens = await conversation(f"{CLOSED_PORT_URL}/v1")  # transport is not in the key
    assert len(compatible.requests) == served
    assert llm_server.requests == []

    assert replayed_tokens == elsewhere_tokens == recorded_tokens
    for original, again, env_again in zip(recorded, replayed, elsewhere, strict=True):
        assert type(again) is OpenAIMessage
        assert again == original == env_again
        assert again.hash_key == original.hash_key
        assert again.usage == original.usage
