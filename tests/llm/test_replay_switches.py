"""The replay switch with `default_llm_agent()` and the recorded timing option.

Under `MINIAGENTS_NB_LLM=replay`, `default_llm_agent()` picks its provider as without the switch (by the API keys
set, else the fake), so a run recorded with a real provider replays when that key variable is set (to anything:
nothing is sent); without it the fake is picked and the mismatch error says which variable to set. The timing
option is proven by the waits replay asks for (a fake `_sleep`), never by measuring time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.errors import InvalidArgumentsError, ReplayMismatchError
from miniagents_nb.ext.llms import FakeLLMAgent, OpenAIMessage, default_llm_agent, offline
from miniagents_nb.ext.llms.providers import OFFLINE_SWITCHES, pick_provider
from miniagents_nb.runs import ReplaySource, RunStore

from .conftest import CLOSED_PORT_URL
from .servers import LLMTestServer, OpenAIStream


def test_the_offline_switches_pick_a_provider_consistently(monkeypatch: pytest.MonkeyPatch) -> None:
    # the autouse fixture sets both API keys (dummies)
    assert offline.OFFLINE_SWITCHES == OFFLINE_SWITCHES == ("fake", "replay")
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "fake")
    assert pick_provider().name == "fake"
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "Replay")
    assert pick_provider().name == "openai"  # as without the switch: by the keys set
    monkeypatch.delenv("OPENAI_API_KEY")
    assert pick_provider().name == "anthropic"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert pick_provider().name == "fake"
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "nonsense")
    with pytest.raises(InvalidArgumentsError) as caught:
        pick_provider()
    assert "'replay'" in str(caught.value)
    assert "'fake'" in str(caught.value)


async def _ask(agent: Any, prompt: str) -> tuple[Any, list[str]]:
    reply = agent.trigger(prompt)
    promise = None
    async for message_promise in reply:
        promise = message_promise
    assert promise is not None
    return await promise, [token async for token in promise]


async def test_default_llm_agent_replays_a_run_recorded_with_a_real_provider(
    llm_server: LLMTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite"
    llm_server.enqueue(OpenAIStream(["Recorded", " once", "."]))
    with RunStore(path) as store:
        async with MiniAgents(record_to=store):
            recorded, recorded_tokens = await _ask(default_llm_agent(system="Be brief."), "Hello")
    assert isinstance(recorded, OpenAIMessage)  # OPENAI_API_KEY (a dummy) picked OpenAI

    served = len(llm_server.requests)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{CLOSED_PORT_URL}/v1")  # nothing listens there
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "replay")
    monkeypatch.setenv("MINIAGENTS_NB_RUNS", str(path))
    monkeypatch.setenv("OPENAI_API_KEY", "any value at all")  # the same variable set: nothing is sent
    async with MiniAgents():
        replayed, replayed_tokens = await _ask(default_llm_agent(system="Be brief."), "Hello")
    assert len(llm_server.requests) == served
    assert replayed == recorded
    assert replayed_tokens == recorded_tokens == ["Recorded", " once", "."]

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    async with MiniAgents():
        agent = default_llm_agent(system="Be brief.")  # no key: the fake, which the store never heard
        with pytest.raises(ReplayMismatchError) as caught:
            await agent.trigger("Hello")
    text = str(caught.value)
    assert "holds requests of openai" in text
    assert "OPENAI_API_KEY" in text
    assert "explicit OpenAI agent" in text


async def _record_a_slow_stream(path: Path) -> tuple[str, tuple[float, ...]]:
    """A fake LLM reply streamed with real gaps between its tokens; its request key and the recorded delays."""
    agent = FakeLLMAgent.fork(replies=["one two three four"], token_delay=0.02)
    with RunStore(path, token_sample_interval_s=0.001) as store:
        async with MiniAgents(record_to=store):
            await agent.trigger("go")
        run = store.load(store.runs(limit=1)[0].run_id)
    (request,) = [request for call in run.calls.values() for request in call.llm_requests]
    assert request.request_key is not None
    reply = ReplaySource(path).reply_for(request.request_key)  # a source of its own: its cursor is fresh
    assert reply is not None
    return request.request_key, reply.delays


async def test_the_recorded_timing_is_requested_when_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded_gaps = tmp_path / "timed.sqlite"
    _, delays = await _record_a_slow_stream(recorded_gaps)
    assert len(delays) == 4
    assert any(delay > 0 for delay in delays[1:])  # the token_delay sleeps left gaps in the recording

    requested: list[float] = []
    real_sleep = offline._sleep

    async def fake_sleep(seconds: float) -> None:
        requested.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(offline, "_sleep", fake_sleep)
    agent = FakeLLMAgent.fork(replies=["never used"])

    async with MiniAgents(replay_from=ReplaySource(recorded_gaps, keep_timing=True)):
        timed = await agent.trigger("go")
    assert str(timed[0]) == "one two three four"
    assert requested == [delay for delay in delays if delay > 0]

    requested.clear()
    monkeypatch.setenv("MINIAGENTS_NB_REPLAY_TIMING", "1")
    async with MiniAgents(replay_from=ReplaySource(recorded_gaps)):
        await agent.trigger("go")
    assert requested == [delay for delay in delays if delay > 0]

    requested.clear()
    monkeypatch.delenv("MINIAGENTS_NB_REPLAY_TIMING")
    async with MiniAgents(replay_from=ReplaySource(recorded_gaps)):
        untimed = await agent.trigger("go")
    assert untimed == timed
    assert requested == [0, 0, 0]  # only task switches between the four tokens


async def test_a_store_of_this_process_replays_at_once_and_replay_can_record(tmp_path: Path) -> None:
    agent = FakeLLMAgent.fork(replies=["a recorded answer"])
    with RunStore(tmp_path / "first.sqlite") as first, RunStore(tmp_path / "second.sqlite") as second:
        async with MiniAgents(record_to=first):
            recorded = await agent.trigger("question")
        # no flush: replay writes out what this process recorded to that file before it reads it
        async with MiniAgents(record_to=second, replay_from=first):
            replayed = await FakeLLMAgent.fork(replies=["never used"]).trigger("question")
        assert replayed == recorded
        run = second.load(second.runs()[0].run_id)
    keys = [request.request_key for call in run.calls.values() for request in call.llm_requests]
    assert keys == [recorded[0].request_key]  # the replayed reply is recorded again, with its key
