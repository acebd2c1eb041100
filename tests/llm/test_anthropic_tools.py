"""The tool loop on `AnthropicAgent` with the official `anthropic` SDK against the local protocol server: `tool_use`
blocks streamed with `input_json_delta` pieces, `stop_reason: tool_use`, the exact request body of every turn
(`tool_use_id` pairing, `is_error` results, the system prompt kept apart), recovery and `max_turns`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from miniagents_nb import MessagePromise, MiniAgents
from miniagents_nb.ext.llms import AnthropicAgent, ToolLoopLimitError, tool

from .servers import AnthropicJSON, AnthropicStream, LLMTestServer
from .tool_streams import AnthropicToolStream, StreamedToolCall

MODEL = "claude-haiku-4-5"
GUARD = 5.0


async def only_promise(sequence: Any) -> MessagePromise:
    promises: list[MessagePromise] = [promise async for promise in sequence]
    assert len(promises) == 1
    return promises[0]


LOOKUP_SCHEMA = {
    "name": "lookup",
    "description": "Look a word up.",
    "input_schema": {
        "type": "object",
        "properties": {"word": {"type": "string", "description": "The word."}},
        "required": ["word"],
        "additionalProperties": False,
    },
}


async def test_streamed_tool_use_blocks_every_turn_body_and_recovery(llm_server: LLMTestServer) -> None:
    started = {"ant": asyncio.Event(), "bee": asyncio.Event()}
    looked_up: list[str] = []

    @tool
    async def lookup(word: str) -> str:
        """Look a word up.

        Args:
            word: The word.
        """
        if word in started:  # ant and bee only return if they run at the same time
            started[word].set()
            await asyncio.wait_for(started["bee" if word == "ant" else "ant"].wait(), GUARD)
        looked_up.append(word)
        if word == "bee":
            raise KeyError("bee")
        return f"{word}: an insect"

    llm_server.enqueue(
        AnthropicToolStream(
            [
                StreamedToolCall("toolu_1", "lookup", ['{"wo', 'rd": "ant"}']),
                StreamedToolCall("toolu_2", "lookup", ['{"word": ', '"bee"}']),
                StreamedToolCall("toolu_3", "lookup", ['{"word": 7}']),
            ],
            text=["Looking", " up."],
        ),
        AnthropicToolStream([StreamedToolCall("toolu_4", "lookup", ['{"word": "wasp"}'])]),
        AnthropicStream(["Ants and", " wasps."], input_tokens=50, output_tokens=4),
    )
    async with MiniAgents():
        promise = await only_promise(
            AnthropicAgent.trigger(
                "What are ants?",
                model=MODEL,
                system="Be brief.",
                max_tokens=100,
                tools=[lookup],
                tool_choice="lookup",
                parallel_tool_calls=False,
            )
        )
        tokens = [token async for token in promise]
        message = await promise
    first, second, third = llm_server.bodies
    question = {"role": "user", "content": "What are ants?"}
    assert first == {
        "model": MODEL,
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [question],
        "tools": [LOOKUP_SCHEMA],
        "tool_choice": {"type": "tool", "name": "lookup", "disable_parallel_tool_use": True},
        "stream": True,
    }
    exchange = [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking up."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"word": "ant"}},
                {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"word": "bee"}},
                {"type": "tool_use", "id": "toolu_3", "name": "lookup", "input": {"word": 7}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ant: an insect"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "KeyError: 'bee'", "is_error": True},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_3",
                    "content": second["messages"][2]["content"][2]["content"],
                    "is_error": True,
                },
            ],
        },
    ]
    assert second == {
        "model": MODEL,
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [question, *exchange],
        "tools": [LOOKUP_SCHEMA],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},  # forced on the first turn only
        "stream": True,
    }
    assert second["messages"][2]["content"][2]["content"].startswith(
        "ToolArgumentsError: The arguments for tool lookup do not fit its schema (word: Input should be a valid string)"
    )
    assert third["messages"][3:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_4", "name": "lookup", "input": {"word": "wasp"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_4", "content": "wasp: an insect"}]},
    ]
    assert sorted(looked_up) == ["ant", "bee", "wasp"]
    assert "".join(tokens) == message.content == "Looking up.\n\nAnts and wasps."
    assert [call.id for call in message.tool_calls] == ["toolu_1", "toolu_2", "toolu_3", "toolu_4"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (40 + 40 + 50, 15 + 15 + 4)
    assert message.stop_reason == "end_turn"
    assert message.tool_turns[0].content == "Looking up."


async def test_max_turns_on_anthropic(llm_server: LLMTestServer) -> None:
    @tool
    def lookup(word: str) -> str:
        """Look a word up."""
        return word

    llm_server.enqueue(AnthropicToolStream([StreamedToolCall("t1", "lookup", ['{"word": "a"}'])]))
    async with MiniAgents():
        promise = await only_promise(AnthropicAgent.trigger("x", model=MODEL, tools=[lookup], max_turns=1))
        with pytest.raises(ToolLoopLimitError) as raised:
            await promise
    assert raised.value.turns[0]["tool_calls"][0]["id"] == "t1"
    assert len(llm_server.requests) == 1


async def test_non_streamed_tool_use_runs_the_loop_too(llm_server: LLMTestServer) -> None:
    @tool
    def lookup(word: str) -> str:
        """Look a word up."""
        return f"{word}!"

    llm_server.enqueue(
        AnthropicJSON(tool_input={"word": "moth"}, tool_name="lookup", stop_reason="tool_use"), AnthropicJSON("Moth!")
    )
    async with MiniAgents():
        message = (await AnthropicAgent.trigger("x", model=MODEL, tools=[lookup], stream=False))[0]
    assert llm_server.bodies[1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_test", "name": "lookup", "input": {"word": "moth"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_test", "content": "moth!"}]},
    ]
    assert (message.content, message.usage.input_tokens) == ("Moth!", 22)
