"""`FakeLLMAgent` (offline, deterministic, streamed) and `default_llm_agent()` (which LLM the environment gets)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel

from miniagents_nb import Message, MessagePromise, MiniAgents
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext.llms import (
    AnthropicAgent,
    FakeLLMAgent,
    FakeLLMMessage,
    LLMMiniAgent,
    LLMResponseError,
    OpenAIAgent,
    SystemMessage,
    ToolCall,
    default_llm_agent,
    tool,
)
from miniagents_nb.ext.llms.fake import split_into_tokens


async def only_promise(sequence: Any) -> MessagePromise:
    promises: list[MessagePromise] = [promise async for promise in sequence]
    assert len(promises) == 1
    return promises[0]


async def tokens_and_message(sequence: Any) -> tuple[list[str], Message]:
    promise = await only_promise(sequence)
    tokens = [token async for token in promise]
    return tokens, await promise


async def test_echoes_the_last_user_message_token_by_token() -> None:
    async with MiniAgents():
        promise = await only_promise(FakeLLMAgent.trigger(["first", "How are you today?"], system="Be brief."))
        assert (promise.known_beforehand.model, promise.known_beforehand.agent_alias) == ("fake-llm", "FAKE_LLM_AGENT")
        tokens = [token async for token in promise]
        message = await promise
    assert tokens == ["How", " are", " you", " today?"]
    assert isinstance(message, FakeLLMMessage)
    assert (message.content, message.role, message.model) == ("How are you today?", "assistant", "fake-llm")
    assert message.choices[0].finish_reason == "stop"
    # prompt: "Be brief." (2) + "first" (1) + "How are you today?" (4)
    assert (message.usage.prompt_tokens, message.usage.completion_tokens, message.usage.total_tokens) == (7, 4, 11)
    assert message.id.startswith("fake-")


async def test_it_is_deterministic() -> None:
    async with MiniAgents():
        first = (await FakeLLMAgent.trigger("same input"))[0]
        second = (await FakeLLMAgent.trigger("same input"))[0]
        other = (await FakeLLMAgent.trigger("other input"))[0]
    assert first == second
    assert first.hash_key == second.hash_key
    assert first.id != other.id


def test_split_into_tokens_keeps_every_character() -> None:
    text = "  Hello,\n\nworld!  "
    assert split_into_tokens(text) == ["  Hello,", "\n\nworld!", "  "]
    assert "".join(split_into_tokens(text)) == text
    assert split_into_tokens("") == []


async def test_scripted_replies_in_order_per_fork() -> None:
    scripted = FakeLLMAgent.fork(replies=["Hi!", "Bye!"])
    other = FakeLLMAgent.fork(replies=("Only this.",))
    async with MiniAgents():
        texts = [str((await scripted.trigger("x"))[0]) for _ in range(3)]
        assert str((await other.trigger("x"))[0]) == "Only this."
        assert str((await FakeLLMAgent.trigger("x", replies=["per call"]))[0]) == "per call"
        assert str((await scripted.fork(replies=["fresh script"]).trigger("x"))[0]) == "fresh script"
        assert str((await scripted.trigger("x"))[0]) == "Bye!"  # the fork's own script goes on
    assert texts == ["Hi!", "Bye!", "Hi!"]  # after the last reply the script starts over


@tool
def lookup(word: str) -> str:
    """Look a word up."""
    return f"{word}: a word"


async def test_replies_and_reply_fn_replace_each_other_in_forks_and_calls() -> None:
    """Given one of the two, a fork or a call drops the other it inherited (an inherited reply_fn used to win over
    new replies, so the script was silently ignored)."""
    by_fn = FakeLLMAgent.fork(reply_fn=lambda messages: "from reply_fn")
    scripted = by_fn.fork(replies=["scripted"])
    by_fn_again = scripted.fork(reply_fn=lambda messages: "reply_fn again")
    both = FakeLLMAgent.fork(replies=["not this"], reply_fn=lambda messages: "reply_fn wins")
    async with MiniAgents():
        assert str((await scripted.trigger("q"))[0]) == "scripted"
        assert str((await by_fn.trigger("q", replies=["per call"]))[0]) == "per call"
        assert (
            str(
                (await by_fn.trigger("q", replies=[ToolCall("lookup", {"word": "moth"}), "looked up"], tools=[lookup]))[
                    0
                ]
            )
            == "looked up"
        )
        assert str((await by_fn_again.trigger("q"))[0]) == "reply_fn again"
        assert str((await scripted.trigger("q", reply_fn=lambda messages: "per call fn"))[0]) == "per call fn"
        assert str((await by_fn.trigger("q"))[0]) == "from reply_fn"  # the forks left their parent alone
        assert str((await scripted.trigger("q"))[0]) == "scripted"
        assert str((await both.trigger("q"))[0]) == "reply_fn wins"  # given both, reply_fn answers, as before
    assert scripted.non_freezable_kwargs["reply_fn"] is None
    assert by_fn_again.non_freezable_kwargs["replies"] is None


async def test_reply_fn_gets_the_conversation_with_system_first() -> None:
    seen: list[list[dict[str, Any]]] = []

    def reply_fn(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        return f"{len(messages)} messages, last: {messages[-1]['content']}"

    async def areply_fn(messages: list[dict[str, Any]]) -> str:
        return str(messages[0]["content"]).upper()

    async with MiniAgents():
        reply = (await FakeLLMAgent.fork(reply_fn=reply_fn).trigger([SystemMessage("rules"), "hello"], system="S"))[0]
        async_reply = (await FakeLLMAgent.trigger("shout", reply_fn=areply_fn))[0]
    assert seen == [
        [
            {"role": "system", "content": "S"},
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "hello"},
        ]
    ]
    assert str(reply) == "3 messages, last: hello"
    assert str(async_reply) == "SHOUT"


async def test_token_delay_spaces_the_tokens() -> None:
    async with MiniAgents():
        started = time.monotonic()
        tokens, _ = await tokens_and_message(FakeLLMAgent.trigger("a b c d", token_delay=0.02))
        elapsed = time.monotonic() - started
    assert tokens == ["a", " b", " c", " d"]
    assert elapsed >= 0.06  # three gaps between four tokens


async def test_non_streamed_is_one_token_and_max_tokens_cuts() -> None:
    async with MiniAgents(stream_llm_tokens_by_default=False):
        tokens, message = await tokens_and_message(FakeLLMAgent.trigger("one two three"))
        cut_tokens, cut = await tokens_and_message(FakeLLMAgent.trigger("one two three", stream=True, max_tokens=2))
    assert tokens == ["one two three"]
    assert message.choices[0].finish_reason == "stop"
    assert cut_tokens == ["one", " two"]
    assert (cut.content, cut.choices[0].finish_reason, cut.usage.completion_tokens) == ("one two", "length", 2)


class Answer(BaseModel):
    value: int


async def test_structured_output_from_scripted_json() -> None:
    async with MiniAgents():
        message = (await FakeLLMAgent.trigger("q", replies=['{"value": 42}'], response_format=Answer))[0]
        promise = await only_promise(FakeLLMAgent.trigger("not json", response_format=Answer))
        with pytest.raises(LLMResponseError, match="not a valid Answer JSON object"):
            await promise
    assert message.parsed.value == 42
    assert message.parsed_object == Answer(value=42)


async def test_reply_fn_failures_reach_the_message_unchanged() -> None:
    def broken(messages: list[dict[str, Any]]) -> str:
        raise KeyError("scripted failure")

    async with MiniAgents():
        promise = await only_promise(FakeLLMAgent.trigger("q", reply_fn=broken))
        with pytest.raises(KeyError, match="scripted failure"):
            await promise


async def test_known_beforehand_and_response_metadata() -> None:
    async with MiniAgents():
        promise = await only_promise(
            FakeLLMAgent.trigger("q", model="pretend-gpt", response_metadata={"not_for_user": True, "role": "user"})
        )
        assert promise.known_beforehand.not_for_user is True
        message = await promise
    assert (message.model, message.role, message.not_for_user) == ("pretend-gpt", "user", True)


async def test_replies_are_persisted_with_their_metadata_and_parsed_data() -> None:
    persisted: list[Message] = []

    async def handler(messages: list[Message]) -> None:
        persisted.extend(messages)

    async with MiniAgents(on_persist_messages=handler):
        reply = (await FakeLLMAgent.trigger("q", replies=['{"value": 7}'], response_format=Answer))[0]
        await MiniAgents.get_current().aflush_tasks()
    assert reply in persisted
    serialized = reply.serialize()
    assert serialized["parsed"]["value"] == 7
    assert serialized["usage"]["completion_tokens"] == 2
    assert not any(key.startswith("__") for key in serialized)  # the live object is not a field
    assert reply.parsed_object == Answer(value=7)
    assert reply.model_copy().parsed_object is None  # ... and is not carried by copies


async def test_full_duplex_call_with_a_live_argument() -> None:
    def reply_fn(messages: list[dict[str, Any]]) -> str:
        return " + ".join(message["content"] for message in messages)

    async with MiniAgents():
        call = FakeLLMAgent.initiate_call(reply_fn=reply_fn)
        call.send_message("a").send_message("b")
        reply = (await call.reply_sequence())[0]
    assert str(reply) == "a + b"


# --- default_llm_agent -----------------------------------------------------------------------------------------------


def _wrapped(agent: Any) -> type:
    return agent.wrapped_func_or_class  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("choice", "openai_key", "anthropic_key", "expected", "model"),
    [
        ("fake", "sk-x", "sk-y", FakeLLMAgent, "fake-llm"),
        ("OpenAI", None, None, OpenAIAgent, "gpt-4.1-mini"),
        ("anthropic", "sk-x", None, AnthropicAgent, "claude-haiku-4-5"),
        ("", "sk-x", "sk-y", OpenAIAgent, "gpt-4.1-mini"),
        ("", None, "sk-y", AnthropicAgent, "claude-haiku-4-5"),
        ("", None, None, FakeLLMAgent, "fake-llm"),
    ],
)
def test_default_llm_agent_picks_by_environment(
    monkeypatch: pytest.MonkeyPatch,
    choice: str,
    openai_key: str | None,
    anthropic_key: str | None,
    expected: Any,
    model: str,
) -> None:
    monkeypatch.setenv("MINIAGENTS_NB_LLM", choice)
    for name, value in (("OPENAI_API_KEY", openai_key), ("ANTHROPIC_API_KEY", anthropic_key)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    agent = default_llm_agent(system="You are terse.")
    assert isinstance(agent, LLMMiniAgent)
    assert _wrapped(agent) is _wrapped(expected)
    assert agent._frozen_kwargs["model"] == model
    assert agent._frozen_kwargs["system"] == "You are terse."


def test_default_llm_agent_model_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "openai")
    monkeypatch.setenv("MINIAGENTS_NB_LLM_MODEL", "gpt-from-env")
    assert default_llm_agent()._frozen_kwargs["model"] == "gpt-from-env"
    assert default_llm_agent(model="explicit")._frozen_kwargs["model"] == "explicit"


def test_default_llm_agent_drops_fake_only_arguments_for_a_real_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "anthropic")
    agent = default_llm_agent(replies=["scripted"], reply_fn=str.upper, token_delay=0.1, temperature=0.5)
    assert {"replies", "reply_fn", "token_delay"}.isdisjoint({*agent._frozen_kwargs, *agent._non_freezable_kwargs})
    assert agent._frozen_kwargs["temperature"] == 0.5
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "fake")
    fake = default_llm_agent(replies=["scripted"], reply_fn=str.upper)
    assert fake._frozen_kwargs["replies"] == ("scripted",)
    assert fake._non_freezable_kwargs["reply_fn"] is str.upper


def test_default_llm_agent_refuses_an_unknown_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "gpt")
    with pytest.raises(InvalidArgumentsError, match=r"MINIAGENTS_NB_LLM='gpt' is not a known LLM"):
        default_llm_agent()


async def test_default_llm_agent_runs_offline_with_fake_replies() -> None:
    """The tutorials' path: no key (the suite sets MINIAGENTS_NB_LLM=fake), scripted replies, streamed."""
    assistant = default_llm_agent(replies=["Offline answer."], token_delay=0)
    async with MiniAgents():
        tokens, message = await tokens_and_message(assistant.trigger("anything"))
    assert tokens == ["Offline", " answer."]
    assert message.usage.completion_tokens == 2
