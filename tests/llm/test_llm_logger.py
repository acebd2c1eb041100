"""`MiniAgents(llm_logger_agent=...)`: one markdown log per LLM call, or a logger agent of your own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import InteractionContext, Message, MiniAgents, miniagent
from miniagents_nb.ext.agents.llm_logger_agents import llm_log_file_name, markdown_llm_logger_agent
from miniagents_nb.ext.llms import FakeLLMAgent, OpenAIAgent, SystemMessage

from .servers import HTTPError, LLMTestServer, OpenAIStream

LOG_NAME = re.compile(r"^\d{8}_\d{6}__\d{6}__(?P<model>.+)__[0-9a-f]{3}\.md$")


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def logs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.md")) if folder.exists() else []


async def test_llm_logger_agent_true_writes_one_markdown_file_per_call(in_tmp_dir: Path) -> None:
    async with MiniAgents(llm_logger_agent=True):
        await FakeLLMAgent.trigger([SystemMessage("Be kind."), "Hello there"], system="Answer briefly.", temperature=0)
        await FakeLLMAgent.trigger("Second call", model="fake/model:v2")
    files = logs(in_tmp_dir / "llm_logs")
    assert len(files) == 2
    models = sorted(LOG_NAME.match(path.name).group("model") for path in files)  # type: ignore[union-attr]
    assert models == ["fake-llm", "fake_model_v2"]
    first = next(path for path in files if "fake-llm" in path.name).read_text(encoding="utf-8")
    assert first.startswith("Agent trace: `FAKE_LLM_AGENT`\n\n```python\n")
    assert "'model': 'fake-llm'" in first
    assert "'temperature': 0" in first
    assert "\nsystem\n======\nAnswer briefly.\n" in first
    assert "\nsystem\n======\nBe kind.\n" in first
    assert "\nuser\n====\nHello there\n" in first
    assert "\nassistant / fake-llm\n====================\nHello there\n" in first
    assert '"total_tokens": 8' in first  # the response's metadata closes the log
    assert first.index("Answer briefly.") < first.index("Be kind.") < first.index("Hello there")


async def test_the_log_of_a_real_provider_call_and_of_a_failure(in_tmp_dir: Path, llm_server: LLMTestServer) -> None:
    llm_server.enqueue(OpenAIStream(llm_server.reply_tokens), HTTPError(500, "exploded"))
    async with MiniAgents(llm_logger_agent=True, errors_as_messages=True):
        agent = OpenAIAgent.fork(model="gpt-4.1-mini", max_retries=0)
        ok = (await agent.trigger("hi", system="S"))[0]
        failed = (await agent.trigger("again"))[0]
    assert str(ok) == "Hello from the test server."
    assert "LLMServerError" in str(failed)
    texts = [path.read_text(encoding="utf-8") for path in logs(in_tmp_dir / "llm_logs")]
    assert len(texts) == 2
    assert any("Hello from the test server." in text and '"finish_reason": "stop"' in text for text in texts)
    assert any("**ERROR:** LLMServerError:" in text and "exploded" in text for text in texts)


async def test_a_custom_logger_agent_gets_the_prompt_and_the_response(in_tmp_dir: Path) -> None:
    received: list[Any] = []

    @miniagent
    async def my_logger(ctx: InteractionContext, request_metadata: Any = None) -> None:
        received.append((await ctx.message_promises, request_metadata))

    async with MiniAgents(llm_logger_agent=my_logger):
        await FakeLLMAgent.trigger("ping", system="S", replies=["pong"])
    ((messages, metadata),) = received
    assert [(message.role, str(message)) for message in messages] == [
        ("system", "S"),
        ("user", "ping"),
        ("assistant", "pong"),
    ]
    assert (metadata.agent_alias, metadata.model, metadata.stream) == ("FAKE_LLM_AGENT", "fake-llm", True)
    assert not (in_tmp_dir / "llm_logs").exists()


async def test_no_logs_by_default_and_a_per_call_override(in_tmp_dir: Path) -> None:
    async with MiniAgents():
        await FakeLLMAgent.trigger("quiet")
    assert not (in_tmp_dir / "llm_logs").exists()
    async with MiniAgents(llm_logger_agent=True):
        await FakeLLMAgent.trigger("quiet too", llm_logger_agent=False)
        await FakeLLMAgent.trigger("logged", llm_logger_agent=markdown_llm_logger_agent.fork(log_folder="elsewhere"))
    assert not (in_tmp_dir / "llm_logs").exists()
    assert len(logs(in_tmp_dir / "elsewhere")) == 1


def test_log_file_name_pattern() -> None:
    from datetime import datetime

    name = llm_log_file_name("gpt-4o 2024/05", datetime(2024, 5, 13, 9, 8, 7, 654321))
    assert re.fullmatch(r"20240513_090807__654321__gpt-4o_2024_05__[0-9a-f]{3}\.md", name)
    assert LOG_NAME.match(llm_log_file_name(None))


async def test_the_logger_does_not_change_what_consumers_get(in_tmp_dir: Path) -> None:
    async with MiniAgents(llm_logger_agent=True):
        replies = await FakeLLMAgent.trigger("same")
    async with MiniAgents():
        plain = await FakeLLMAgent.trigger("same")
    assert [message.hash_key for message in replies] == [message.hash_key for message in plain]
    assert all(isinstance(message, Message) for message in replies)
