"""`AnthropicAgent` (and the seeds' `anthropic_agent`) with the official `anthropic` SDK against the local server.

Checks the exact request (the `system` parameter, the fake first user message, merged same-role messages,
`max_tokens`, tools for structured output) and the streamed tokens and final fields.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import BaseModel

from miniagents_nb import Message, MessagePromise, MiniAgents
from miniagents_nb.ext.llm.anthropic import anthropic_agent, create_anthropic_agent
from miniagents_nb.ext.llms import (
    AnthropicAgent,
    AnthropicMessage,
    AssistantMessage,
    SystemMessage,
    UserMessage,
    aprepare_dicts_for_anthropic,
)

from .servers import AnthropicJSON, AnthropicStream, LLMTestServer

MODEL = "claude-haiku-4-5"


async def only_promise(sequence: Any) -> MessagePromise:
    promises: list[MessagePromise] = [promise async for promise in sequence]
    assert len(promises) == 1
    return promises[0]


async def tokens_and_message(sequence: Any) -> tuple[list[str], Message]:
    promise = await only_promise(sequence)
    tokens = [token async for token in promise]
    return tokens, await promise


async def test_streams_tokens_and_collects_the_final_message(llm_server: LLMTestServer) -> None:
    gate = threading.Event()
    llm_server.enqueue(AnthropicStream(["Hello", ", ", "world"], gate=gate, input_tokens=12, output_tokens=3))
    async with MiniAgents():
        promise = await only_promise(AnthropicAgent.trigger("hi", model=MODEL, response_metadata={"lane": 2}))
        assert (promise.known_beforehand.model, promise.known_beforehand.agent_alias) == (MODEL, "ANTHROPIC_AGENT")
        assert promise.known_beforehand.lane == 2
        gate.set()
        tokens = [token async for token in promise]
        message = await promise
    assert tokens == ["Hello", ", ", "world"]
    assert isinstance(message, AnthropicMessage)
    assert isinstance(message, AssistantMessage)
    assert (message.content, message.role, message.stop_reason, message.id) == (
        "Hello, world",
        "assistant",
        "end_turn",
        "msg_test_stream",
    )
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 3)
    assert (message.model, message.response_model, message.lane) == (MODEL, "claude-test-1", 2)
    body = llm_server.last_body
    assert body == {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    headers = llm_server.requests[-1].headers
    assert "sk-ant-test-dummy-anthropic-key" in (headers.get("x-api-key") or headers["authorization"])


async def test_system_parameter_alternation_and_fake_first_user_message(llm_server: LLMTestServer) -> None:
    async with MiniAgents():
        await AnthropicAgent.trigger(
            [
                SystemMessage("conversation rules"),
                AssistantMessage("I start"),
                AssistantMessage("and go on"),
                "user one",
                UserMessage("user two"),
                AssistantMessage("answer"),
            ],
            model=MODEL,
            system="kwarg system",
            max_tokens=1000,
            temperature=0.3,
        )
    assert llm_server.last_body == {
        "model": MODEL,
        "max_tokens": 1000,
        "temperature": 0.3,
        "system": "conversation rules\n\nkwarg system",
        "messages": [
            {"role": "user", "content": "/start"},
            {"role": "assistant", "content": "I start\n\nand go on"},
            {"role": "user", "content": "user one\n\nuser two"},
            {"role": "assistant", "content": "answer"},
        ],
        "stream": True,
    }


async def test_aprepare_dicts_for_anthropic() -> None:
    async with MiniAgents():
        empty = await aprepare_dicts_for_anthropic([], system="S")
        custom = await aprepare_dicts_for_anthropic(
            [AssistantMessage("a"), "u1", "u2"],
            message_delimiter_for_same_role=" | ",
            fake_first_user_message="(begin)",
        )
        no_system = await aprepare_dicts_for_anthropic(["only user"])
    assert empty == [{"role": "user", "content": "/start"}, {"role": "system", "content": "S"}]
    assert custom == [
        {"role": "user", "content": "(begin)"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "u1 | u2"},
    ]
    assert no_system == [{"role": "user", "content": "only user"}]


async def test_non_streamed_reply_is_one_token(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(AnthropicJSON("Whole answer.", stop_reason="max_tokens"))
    async with MiniAgents(stream_llm_tokens_by_default=False):
        tokens, message = await tokens_and_message(AnthropicAgent.trigger("q", model=MODEL))
    assert "stream" not in llm_server.last_body
    assert tokens == ["Whole answer."]
    assert (message.stop_reason, message.usage.output_tokens, message.id) == ("max_tokens", 6, "msg_test_json")


class Verdict(BaseModel):
    ok: bool
    reason: str


@pytest.mark.parametrize("stream", [True, False])
async def test_structured_output_through_a_forced_tool(llm_server: LLMTestServer, stream: bool) -> None:
    if stream:
        llm_server.enqueue(AnthropicStream(['{"ok": true,', ' "reason": "fine"}'], tool_name="Verdict"))
    else:
        llm_server.enqueue(AnthropicJSON(tool_input={"ok": True, "reason": "fine"}, tool_name="Verdict"))
    async with MiniAgents():
        tokens, message = await tokens_and_message(
            AnthropicAgent.trigger("judge", model=MODEL, stream=stream, response_format=Verdict)
        )
    body = llm_server.last_body
    (tool,) = body["tools"]
    assert tool["name"] == "Verdict"
    assert tool["input_schema"] == Verdict.model_json_schema()
    assert body["tool_choice"] == {"type": "tool", "name": "Verdict"}
    assert "".join(tokens).replace(" ", "") == '{"ok":true,"reason":"fine"}'
    assert (message.parsed.ok, message.parsed.reason) == (True, "fine")
    assert message.parsed_object == Verdict(ok=True, reason="fine")
    assert message.content_blocks[0].type == "tool_use"


async def test_seed_function_style_anthropic_agent(llm_server: LLMTestServer) -> None:
    """The seeds' `anthropic_agent.fork(model=..., max_tokens=1000)`: same agent, alias ANTHROPIC_AGENT."""
    assistant = anthropic_agent.fork(model=MODEL, max_tokens=1000)
    factory_made = create_anthropic_agent(MODEL, max_tokens=10)
    async with MiniAgents():
        promise = await only_promise(assistant.inquire("hi"))
        assert promise.known_beforehand.agent_alias == "ANTHROPIC_AGENT"
        assert str(await promise) == "Hello from the test server."
        await factory_made.trigger("again")
    assert [body["max_tokens"] for body in llm_server.bodies] == [1000, 10]
