"""Replay through the official SDK code paths: a conversation recorded against the local protocol servers answers
again, identically, with no server reachable; an unrecorded request fails clearly; `MINIAGENTS_NB_LLM=fake` takes
every LLM agent offline (explicit forks and the seeds' names), announced once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.errors import ReplayMismatchError
from miniagents_nb.ext.llm.anthropic import anthropic_agent
from miniagents_nb.ext.llm.openai import openai_agent
from miniagents_nb.ext.llms import AnthropicAgent, AnthropicMessage, OpenAIAgent, OpenAIMessage, offline
from miniagents_nb.runs import RunStore

from .conftest import CLOSED_PORT_URL, DUMMY_ANTHROPIC_KEY, DUMMY_OPENAI_KEY
from .servers import AnthropicStream, LLMTestServer, OpenAIStream


async def _conversation(openai: Any, anthropic: Any) -> tuple[list[Any], list[list[str]]]:
    """Two OpenAI turns and one Anthropic turn; the messages and each reply's tokens as consumers saw them."""
    messages: list[Any] = []
    tokens: list[list[str]] = []
    for agent, prompt in ((openai, "Hello"), (openai, "And then?"), (anthropic, "Bonjour")):
        promise = None
        reply = agent.trigger(prompt)
        async for message_promise in reply:
            promise = message_promise
        assert promise is not None
        tokens.append([token async for token in promise])
        messages.append(await promise)
    return messages, tokens


def _agents() -> tuple[Any, Any]:
    return (
        OpenAIAgent.fork(model="gpt-4.1-mini", system="Be brief.", temperature=0.2),
        AnthropicAgent.fork(model="claude-haiku-4-5", max_tokens=300),
    )


def _enqueue(server: LLMTestServer) -> None:
    server.enqueue(OpenAIStream(["Hi", " there", "!"]))
    server.enqueue(OpenAIStream(["Then", " we", " rest", "."]))
    server.enqueue(AnthropicStream(["Salut", ", ", "toi"], input_tokens=12, output_tokens=3))


async def test_a_recorded_conversation_replays_identically_with_no_server(
    llm_server: LLMTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite"
    _enqueue(llm_server)
    with RunStore(path) as store:
        async with MiniAgents(record_to=store):
            recorded, recorded_tokens = await _conversation(*_agents())
        store.flush()
        run = store.load(store.runs()[0].run_id)
    requests = [request for call in run.calls.values() for request in call.llm_requests]
    assert [request.provider for request in requests] == ["openai", "openai", "anthropic"]
    assert all(request.request_key for request in requests)
    for message in recorded:
        serialized = message.serialized
        assert DUMMY_OPENAI_KEY not in serialized
        assert DUMMY_ANTHROPIC_KEY not in serialized
    assert DUMMY_OPENAI_KEY.encode() not in path.read_bytes()
    assert DUMMY_ANTHROPIC_KEY.encode() not in path.read_bytes()

    served = len(llm_server.requests)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{CLOSED_PORT_URL}/v1")  # nothing listens there
    monkeypatch.setenv("ANTHROPIC_BASE_URL", CLOSED_PORT_URL)
    async with MiniAgents(replay_from=path):
        replayed, replayed_tokens = await _conversation(*_agents())
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "replay")
    monkeypatch.setenv("MINIAGENTS_NB_RUNS", str(path))
    async with MiniAgents():
        from_env, _ = await _conversation(*_agents())
    assert len(llm_server.requests) == served  # no request reached any server

    assert (
        replayed_tokens
        == recorded_tokens
        == [["Hi", " there", "!"], ["Then", " we", " rest", "."], ["Salut", ", ", "toi"]]
    )
    assert [type(message) for message in replayed] == [OpenAIMessage, OpenAIMessage, AnthropicMessage]
    for original, again, env_again in zip(recorded, replayed, from_env, strict=True):
        assert again == original
        assert env_again == original
        assert again.hash_key == original.hash_key
        assert again.usage == original.usage
    assert replayed[2].stop_reason == recorded[2].stop_reason


async def test_an_unrecorded_request_names_the_agent_and_shows_the_request(
    llm_server: LLMTestServer, tmp_path: Path
) -> None:
    path = tmp_path / "runs.sqlite"
    _enqueue(llm_server)
    with RunStore(path) as store:
        async with MiniAgents(record_to=store):
            await _conversation(*_agents())
    async with MiniAgents(replay_from=path):
        kept = await OpenAIAgent.fork(model="gpt-4.1-mini", system="Be brief.", temperature=0.2).trigger("Hello")
        with pytest.raises(ReplayMismatchError) as caught:
            await OpenAIAgent.fork(model="gpt-4.1-mini", api_key="sk-secret-never-shown").trigger("Unheard of")
    text = str(caught.value)
    assert "OPEN_AI_AGENT" in text
    assert "Unheard of" in text
    assert "gpt-4.1-mini" in text
    assert "sk-secret-never-shown" not in text
    assert str(kept[0]) == "Hi there!"  # the other agents lose nothing


@pytest.mark.parametrize(
    "agent",
    [
        OpenAIAgent.fork(model="gpt-4.1-mini"),
        AnthropicAgent.fork(model="claude-haiku-4-5"),
        openai_agent.fork(model="gpt-4o-2024-05-13"),
        anthropic_agent.fork(model="claude-haiku-4-5"),
    ],
    ids=["OpenAIAgent.fork", "AnthropicAgent.fork", "openai_agent", "anthropic_agent"],
)
async def test_the_fake_switch_takes_every_llm_agent_offline(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    # the autouse fixture sets MINIAGENTS_NB_LLM=fake and points the SDKs at a closed port
    offline.forget_notices()
    with caplog.at_level(logging.WARNING, logger="miniagents_nb.llms"):
        async with MiniAgents():
            first = await agent.trigger("echo this back")
            second = await agent.trigger("and this")
    assert [str(first[0]), str(second[0])] == ["echo this back", "and this"]
    notices = [record.getMessage() for record in caplog.records if "MINIAGENTS_NB_LLM=fake" in record.getMessage()]
    assert len(notices) == 1  # said once, clearly
    assert "no provider" in notices[0]
