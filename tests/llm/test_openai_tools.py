"""The tool loop on `OpenAIAgent` with the official `openai` SDK against the local protocol server: parallel tool
calls streamed by index with their arguments split across chunks, the exact request body of every turn, errors
going back to the model, `max_turns`, cancellation mid-tool."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from miniagents_nb import MessagePromise, MiniAgents
from miniagents_nb.ext.llms import OpenAIAgent, ToolLoopLimitError, tool

from .servers import LLMTestServer, OpenAIJSON, OpenAIStream
from .tool_streams import OpenAIToolJSON, OpenAIToolStream, StreamedToolCall

MODEL = "gpt-4.1-mini"
GUARD = 5.0  # a wrong implementation fails on this bound instead of hanging; a right one never waits for it


async def only_promise(sequence: Any) -> MessagePromise:
    promises: list[MessagePromise] = [promise async for promise in sequence]
    assert len(promises) == 1
    return promises[0]


ADD_SCHEMA = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


async def test_parallel_streamed_calls_every_turn_body_and_the_final_message(llm_server: LLMTestServer) -> None:
    started = {"add": asyncio.Event(), "weather": asyncio.Event()}

    @tool
    async def add(a: int, b: int) -> int:
        """Add two integers."""
        started["add"].set()
        await asyncio.wait_for(started["weather"].wait(), GUARD)  # only returns if `weather` runs meanwhile
        return a + b

    @tool(strict=False)
    async def weather(city: str) -> dict[str, Any]:
        """The weather of a city.

        Args:
            city: Its name.
        """
        started["weather"].set()
        await asyncio.wait_for(started["add"].wait(), GUARD)
        return {"city": city, "sky": "clear"}

    llm_server.enqueue(
        OpenAIToolStream(
            [
                StreamedToolCall("call_add", "add", ['{"a"', ": 2,", ' "b": ', "3}"]),
                StreamedToolCall("call_wx", "weather", ['{"ci', 'ty": "Oslo"}']),
            ],
            interleave=True,
        ),
        OpenAIStream(["5, and", " clear in Oslo."]),
    )
    async with MiniAgents():
        promise = await only_promise(
            OpenAIAgent.trigger(
                "Add 2 and 3; weather in Oslo?",
                model=MODEL,
                system="Use tools.",
                tools=[add, weather],
                tool_choice="required",
                parallel_tool_calls=True,
                temperature=0,
            )
        )
        tokens = [token async for token in promise]
        message = await promise
    first, second = llm_server.bodies
    weather_schema = {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "The weather of a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "Its name."}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    conversation = [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Add 2 and 3; weather in Oslo?"},
    ]
    assert first == {
        "model": MODEL,
        "messages": conversation,
        "temperature": 0,
        "tools": [ADD_SCHEMA, weather_schema],
        "tool_choice": "required",
        "parallel_tool_calls": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert second == {
        "model": MODEL,
        "messages": [
            *conversation,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_add",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
                    },
                    {
                        "id": "call_wx",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_add", "content": "5"},
            {"role": "tool", "tool_call_id": "call_wx", "content": '{"city":"Oslo","sky":"clear"}'},
        ],
        "temperature": 0,
        "tools": [ADD_SCHEMA, weather_schema],
        "parallel_tool_calls": True,  # tool_choice only forces the first turn
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert tokens == ["5, and", " clear in Oslo."]
    assert message.content == "5, and clear in Oslo."
    assert [(call.id, call.name, call.result) for call in message.tool_calls] == [
        ("call_add", "add", "5"),
        ("call_wx", "weather", '{"city":"Oslo","sky":"clear"}'),
    ]
    assert message.tool_calls[1].arguments.city == "Oslo"
    assert (message.usage.prompt_tokens, message.usage.completion_tokens, message.usage.total_tokens) == (39, 17, 56)
    assert message.tool_turns[0].usage.total_tokens == 42
    assert message.choices[0].finish_reason == "stop"


async def test_invalid_arguments_and_a_raising_tool_go_back_then_the_model_recovers(llm_server: LLMTestServer) -> None:
    calls: list[tuple[int, int]] = []

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append((a, b))
        if a < 0:
            raise ValueError("negative numbers are not supported")
        return a + b

    llm_server.enqueue(
        OpenAIToolStream(
            [
                StreamedToolCall("c1", "add", ['{"a": 1, ', '"b": "x"}']),
                StreamedToolCall("c2", "add", ['{"a": -1, "b": 1}']),
                StreamedToolCall("c3", "add", ['{"a": 1, "b"']),
            ],
            text=["Trying."],
        ),
        OpenAIToolStream([StreamedToolCall("c4", "add", ['{"a": 1, "b": 2}'])]),
        OpenAIStream(["It is 3."]),
    )
    async with MiniAgents():
        message = (await OpenAIAgent.trigger("1+2?", model=MODEL, tools=[add]))[0]
    assert calls == [(-1, 1), (1, 2)]
    second, third = llm_server.bodies[1:]
    assert second["messages"][1]["content"] == "Trying."
    results = second["messages"][2:]
    assert [item["tool_call_id"] for item in results] == ["c1", "c2", "c3"]
    assert results[0]["content"].startswith("ToolArgumentsError: The arguments for tool add do not fit its schema (b:")
    assert results[1]["content"] == "ValueError: negative numbers are not supported"
    assert results[2]["content"].startswith("ToolArgumentsError: ")
    assert "Invalid JSON" in results[2]["content"]
    assert third["messages"][-1] == {"role": "tool", "tool_call_id": "c4", "content": "3"}
    assert message.content == "Trying.\n\nIt is 3."
    assert [call.is_error for call in message.tool_calls] == [True, True, True, False]


async def test_max_turns_stops_with_an_error(llm_server: LLMTestServer) -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    llm_server.enqueue(
        OpenAIToolStream([StreamedToolCall("p1", "ping", ["{}"])]),
        OpenAIToolStream([StreamedToolCall("p2", "ping", ["{}"])]),
    )
    async with MiniAgents():
        promise = await only_promise(OpenAIAgent.trigger("ping", model=MODEL, tools=[ping], max_turns=2))
        with pytest.raises(ToolLoopLimitError, match="max_turns=2"):
            await promise
    assert len(llm_server.requests) == 2


async def test_cancelling_the_call_mid_tool_cancels_the_tool(llm_server: LLMTestServer) -> None:
    started, cancelled, never = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @tool
    async def slow() -> str:
        """Takes forever."""
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    llm_server.enqueue(OpenAIToolStream([StreamedToolCall("s1", "slow", ["{}"])]))
    async with MiniAgents():
        call = OpenAIAgent.initiate_call(model=MODEL, tools=[slow])
        call.send_message("go")
        promise = await only_promise(call.reply_sequence())
        waiting = asyncio.ensure_future(promise)
        await asyncio.wait_for(started.wait(), GUARD)
        call.cancel()
        await asyncio.wait_for(cancelled.wait(), GUARD)
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert len(llm_server.requests) == 1


async def test_provider_shaped_tools_still_pass_through_without_a_loop(llm_server: LLMTestServer) -> None:
    async with MiniAgents():
        message = (
            await OpenAIAgent.trigger(
                "hi", model=MODEL, tools=[ADD_SCHEMA], tool_choice="auto", parallel_tool_calls=False
            )
        )[0]
    body = llm_server.last_body
    assert (body["tools"], body["tool_choice"], body["parallel_tool_calls"]) == ([ADD_SCHEMA], "auto", False)
    assert message.content == "Hello from the test server."
    assert len(llm_server.requests) == 1


async def test_non_streamed_responses_run_the_loop_too(llm_server: LLMTestServer) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm_server.enqueue(OpenAIToolJSON([StreamedToolCall("j1", "add", ['{"a": 4, "b": 5}'])]), OpenAIJSON("9."))
    async with MiniAgents():
        message = (await OpenAIAgent.trigger("4+5", model=MODEL, tools=[add], stream=False))[0]
    assert llm_server.bodies[1]["messages"][-1] == {"role": "tool", "tool_call_id": "j1", "content": "9"}
    assert "stream" not in llm_server.bodies[0]
    assert (message.content, message.usage.total_tokens) == ("9.", 44)
