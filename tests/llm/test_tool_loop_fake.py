"""The tool loop on `FakeLLMAgent`: scripted tool calls stream like a real model's, every execution is an agent call
under the LLM call, tools of a turn run concurrently (sequential ones alone), errors go back to the model, and the
final message carries the exchange."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from miniagents_nb import InteractionContext, MessagePromise, MiniAgents, StreamCursor, miniagent
from miniagents_nb.events import AgentCallQueued, AgentCallStatus, MiniAgentsEvent
from miniagents_nb.ext.llms import (
    FakeLLMAgent,
    ToolArgumentsError,
    ToolCall,
    ToolCallMessage,
    ToolLoopLimitError,
    ToolNotFoundError,
    ToolTimeoutError,
    tool,
)
from miniagents_nb.ext.llms.fake import split_into_tokens
from miniagents_nb.messages import ErrorMessage

GUARD = 5.0  # a wrong implementation fails on this bound instead of hanging; a right one never waits for it


async def only_promise(sequence: Any) -> MessagePromise:
    promises: list[MessagePromise] = [promise async for promise in sequence]
    assert len(promises) == 1
    return promises[0]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_scripted_tool_calls_without_python_tools_are_openai_shaped_metadata() -> None:
    async with MiniAgents():
        message = (
            await FakeLLMAgent.trigger("hi", replies=[["Calling.", ToolCall("add", {"a": 1, "b": 2}, id="c1")]])
        )[0]
    assert message.content == "Calling."
    assert message.choices[0].finish_reason == "tool_calls"
    call = message.choices[0].message.tool_calls[0]
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "c1",
        "function",
        "add",
        '{"a": 1, "b": 2}',
    )


async def test_the_loop_runs_tools_and_the_final_message_carries_the_exchange() -> None:
    seen: list[list[dict[str, Any]]] = []

    def reply_fn(messages: list[dict[str, Any]]) -> Any:
        seen.append(messages)
        if messages[-1]["role"] == "tool":
            return "1 + 2 = 3."
        return ["Let me add.", ToolCall("add", {"a": 1, "b": 2}, id="c1")]

    async with MiniAgents():
        llm = FakeLLMAgent.fork(reply_fn=reply_fn, tools=[add])
        promise = await only_promise(llm.trigger("What is 1 + 2?", system="Be exact."))
        tokens = [token async for token in promise]
        message = await promise
    assert "".join(tokens) == message.content == "Let me add.\n\n1 + 2 = 3."
    assert seen[1] == [
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "What is 1 + 2?"},
        {
            "role": "assistant",
            "content": "Let me add.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
    ]
    (call,) = message.tool_calls
    assert (call.id, call.name, call.arguments.a, call.arguments.b, call.result, call.is_error) == (
        "c1",
        "add",
        1,
        2,
        "3",
        False,
    )
    first, second = message.tool_turns
    assert (first.content, second.content, second.tool_calls) == ("Let me add.", "1 + 2 = 3.", ())
    assert message.usage.completion_tokens == first.usage.completion_tokens + second.usage.completion_tokens
    assert message.usage.prompt_tokens == first.usage.prompt_tokens + second.usage.prompt_tokens
    assert message.choices[0].finish_reason == "stop"


async def test_every_execution_is_an_agent_call_under_the_llm_call_with_the_streamed_arguments_as_input() -> None:
    events: list[MiniAgentsEvent] = []
    arguments = '{"a": 20, "b": 22}'
    streamed: list[list[str]] = []

    async def read_arguments(call: Any) -> None:
        async for promise in call.input_sequence_promise:  # a view reads the call's input as it arrives
            assert promise.known_beforehand.tool_name == "add"
            cursor = StreamCursor(promise)
            waiter = cursor.waiter()
            while waiter is not None:
                await waiter
                streamed.append(cursor.take())
                waiter = cursor.waiter()
            streamed.append(cursor.take())

    readers: list[asyncio.Task[None]] = []

    def observe(event: MiniAgentsEvent) -> None:
        events.append(event)
        if isinstance(event, AgentCallQueued) and event.call.agent.alias == "add":
            # the call exists while the model is still writing its arguments: a view can show them filling in
            readers.append(asyncio.ensure_future(read_arguments(event.call)))

    async with MiniAgents() as context:
        context.subscribe(observe)
        llm = FakeLLMAgent.fork(replies=[ToolCall("add", arguments, id="c7"), "42"], tools=[add])
        message = (await llm.trigger("sum"))[0]
        await asyncio.gather(*readers)
    queued = [event.call for event in events if isinstance(event, AgentCallQueued)]
    llm_call, tool_call = queued
    assert (llm_call.agent.alias, tool_call.agent.alias, tool_call.parent) == ("FAKE_LLM_AGENT", "add", llm_call)
    (tool_input,) = await tool_call.input_sequence_promise
    assert isinstance(tool_input, ToolCallMessage)
    assert (tool_input.content, tool_input.tool_call_id, tool_input.arguments.a) == (arguments, "c7", 20)
    (result,) = await tool_call.reply_sequence_promise
    assert (result.content, result.tool_name) == ("42", "add")
    assert [piece for batch in streamed for piece in batch] == split_into_tokens(arguments)
    assert len([batch for batch in streamed if batch]) > 1  # seen piece by piece, not in one go
    assert message.content == "42"


async def test_tools_of_one_turn_run_concurrently_and_results_return_in_call_order() -> None:
    started = {name: asyncio.Event() for name in ("slow", "fast")}

    @tool
    async def slow() -> str:
        """Finishes only once `fast` has started: it can only finish if both run at once."""
        started["slow"].set()
        await asyncio.wait_for(started["fast"].wait(), GUARD)
        return "slow done"

    @tool
    async def fast() -> str:
        """Returns as soon as `slow` is running."""
        started["fast"].set()
        await asyncio.wait_for(started["slow"].wait(), GUARD)
        return "fast done"

    seen: list[list[dict[str, Any]]] = []

    def reply_fn(messages: list[dict[str, Any]]) -> Any:
        seen.append(messages)
        return "ok" if len(seen) > 1 else [ToolCall("slow", {}, id="1"), ToolCall("fast", {}, id="2")]

    async with MiniAgents():
        message = (await FakeLLMAgent.trigger("go", reply_fn=reply_fn, tools=[slow, fast]))[0]
    assert [(item["tool_call_id"], item["content"]) for item in seen[1][2:]] == [("1", "slow done"), ("2", "fast done")]
    assert [call.result for call in message.tool_calls] == ["slow done", "fast done"]


async def test_a_sequential_tool_runs_alone() -> None:
    running: set[str] = set()
    seen_by_alone: list[frozenset[str]] = []
    x_and_y_running = asyncio.Event()

    @tool
    async def par(tag: str) -> str:
        """Runs beside others; "x" and "y" only finish if they run at the same time."""
        running.add(tag)
        if running >= {"x", "y"}:
            x_and_y_running.set()
        if tag in ("x", "y"):
            await asyncio.wait_for(x_and_y_running.wait(), GUARD)
        else:
            await asyncio.sleep(0)
        running.discard(tag)
        return tag

    @tool(sequential=True)
    async def alone() -> str:
        """Writes a file: nothing else may run meanwhile."""
        running.add("alone")
        seen_by_alone.append(frozenset(running))
        await asyncio.sleep(0)  # a task switch: a tool running beside it would show up now
        seen_by_alone.append(frozenset(running))
        running.discard("alone")
        return "alone"

    calls = [
        ToolCall("par", {"tag": "w"}),
        ToolCall("alone", {}),
        ToolCall("par", {"tag": "x"}),
        ToolCall("par", {"tag": "y"}),
    ]
    async with MiniAgents():
        message = (await FakeLLMAgent.trigger("go", replies=[calls, "done"], tools=[par, alone]))[0]
    assert [call.result for call in message.tool_calls] == ["w", "alone", "x", "y"]
    assert seen_by_alone == [frozenset({"alone"})] * 2
    assert x_and_y_running.is_set()  # the two after `alone` ran together


async def test_invalid_arguments_and_unknown_tools_go_back_to_the_model_which_recovers() -> None:
    executed: list[tuple[int, int]] = []

    @tool
    def adder(a: int, b: int) -> int:
        """Add."""
        executed.append((a, b))
        return a + b

    replies = [
        [ToolCall("adder", '{"a": 1, "b": "two"}', id="bad"), ToolCall("subtract", {}, id="unknown")],
        [ToolCall("adder", '{"a": 1', id="broken")],
        ToolCall("adder", {"a": 1, "b": 2}, id="good"),
        "3",
    ]
    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as context:
        context.subscribe(events.append)
        message = (await FakeLLMAgent.trigger("1+2", replies=replies, tools=[adder]))[0]
    assert executed == [(1, 2)]
    # The call of the unknown tool is in the trace like any other: under the LLM call, its input the model's tool
    # call, failed saying what happened (handled by the loop: an error message, not an error nobody handled).
    [missing] = [
        event.call for event in events if isinstance(event, AgentCallQueued) and event.agent.alias == "subtract"
    ]
    assert missing.parent is not None
    assert missing.parent.agent.alias == FakeLLMAgent.alias
    [tool_call] = await missing.input_sequence_promise
    assert isinstance(tool_call, ToolCallMessage)
    assert tool_call.tool_name == "subtract"
    [failure] = await missing.reply_sequence_promise
    assert isinstance(failure, ErrorMessage)
    assert "ToolNotFoundError: There is no tool named 'subtract'" in str(failure)
    assert missing.status is AgentCallStatus.FAILED
    assert isinstance(missing.error, ToolNotFoundError)
    assert missing.error.tool_name == "subtract"
    bad, unknown, broken, good = message.tool_calls
    assert bad.is_error
    assert bad.result.startswith("ToolArgumentsError: The arguments for tool adder do not fit its schema")
    assert "b: Input should be a valid integer" in bad.result
    assert unknown.is_error
    assert unknown.result == "There is no tool named 'subtract'. The tools are: adder; call one of those."
    assert broken.is_error
    assert "Invalid JSON" in broken.result
    assert broken.arguments == '{"a": 1'
    assert (good.result, good.is_error, message.content) == ("3", False, "3")


async def test_a_tool_that_raises_is_an_error_result_unless_tool_errors_is_raise() -> None:
    @tool
    async def explode(reason: str) -> str:
        """Fails."""
        raise RuntimeError(f"boom: {reason}")

    script = [ToolCall("explode", {"reason": "test"}), "It failed, sorry."]
    async with MiniAgents():
        message = (await FakeLLMAgent.trigger("x", replies=script, tools=[explode]))[0]
        assert (message.tool_calls[0].result, message.tool_calls[0].is_error) == ("RuntimeError: boom: test", True)
        assert message.content == "It failed, sorry."

        promise = await only_promise(FakeLLMAgent.trigger("x", replies=script, tools=[explode], tool_errors="raise"))
        with pytest.raises(RuntimeError, match="boom: test"):
            await promise

        as_messages = (await FakeLLMAgent.trigger("x", replies=script, tools=[explode], errors_as_messages=True))[0]
        assert as_messages.tool_calls[0].result == "RuntimeError: boom: test"

        with pytest.raises(ToolArgumentsError):
            await FakeLLMAgent.trigger("x", replies=[ToolCall("explode", {})], tools=[explode], tool_errors="raise")


async def test_errors_as_messages_reach_the_model_as_error_results() -> None:
    @tool
    async def explode() -> str:
        """Fails."""
        raise ValueError("nope")

    async with MiniAgents(errors_as_messages=True):
        message = (await FakeLLMAgent.trigger("x", replies=[ToolCall("explode", {}), "ok"], tools=[explode]))[0]
        raised = (
            await FakeLLMAgent.trigger(
                "x", replies=[ToolCall("explode", {}), "ok"], tools=[explode], tool_errors="raise"
            )
        )[0]
    assert (message.tool_calls[0].result, message.tool_calls[0].is_error) == ("ValueError: nope", True)
    assert not isinstance(message, ErrorMessage)
    # tool_errors="raise": the tool's own error fails the LLM message (an ErrorMessage here, as errors_as_messages says)
    assert isinstance(raised, ErrorMessage)
    assert str(raised.content).endswith("ValueError: nope")


async def test_max_turns_is_a_clear_error_at_the_message_with_the_exchange_so_far() -> None:
    ran: list[int] = []

    @tool
    def again(n: int) -> str:
        """Loops."""
        ran.append(n)
        return "again"

    async with MiniAgents():
        llm = FakeLLMAgent.fork(replies=[ToolCall("again", {"n": 1}), ToolCall("again", {"n": 2})], tools=[again])
        promise = await only_promise(llm.trigger("loop", max_turns=2))
        with pytest.raises(ToolLoopLimitError) as raised:
            await promise
    assert ran == [1]  # the last turn's calls are not run: no request would read their results
    assert "after max_turns=2 requests" in str(raised.value)
    assert [turn["tool_calls"][0]["arguments"]["n"] for turn in raised.value.turns] == [1, 2]


async def test_stop_at_tools_ends_the_loop_with_the_tool_result_as_the_answer() -> None:
    @tool
    def final_answer(answer: str) -> str:
        """Give the final answer."""
        return answer.upper()

    async with MiniAgents():
        message = (
            await FakeLLMAgent.trigger(
                "x",
                replies=[["Done:", ToolCall("final_answer", {"answer": "yes"})], "never"],
                tools=[final_answer],
                stop_at_tools=["final_answer"],
            )
        )[0]
    assert message.content == "Done:\n\nYES"
    assert len(message.tool_turns) == 1


async def test_an_agent_is_a_tool_whose_call_is_a_child_of_the_tool_call() -> None:
    @miniagent
    async def researcher(ctx: InteractionContext, depth: int) -> None:
        """Researches."""
        async for message in ctx.message_promises:
            ctx.reply(f"{await message} (depth {depth})")

    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as context:
        context.subscribe(events.append)
        script = [ToolCall("researcher", {"request": "bees", "depth": 2}), "Bees are great."]
        message = (await FakeLLMAgent.trigger("tell me", replies=script, tools=[researcher]))[0]
    assert message.tool_calls[0].result == "bees (depth 2)"
    queued = [event.call for event in events if isinstance(event, AgentCallQueued)]
    assert [call.agent.alias for call in queued] == ["FAKE_LLM_AGENT", "researcher", "RESEARCHER"]
    assert queued[2].parent is queued[1]
    assert queued[1].parent is queued[0]
    assert queued[2].kwargs == {"depth": 2}


async def test_a_tool_timeout_is_an_error_result() -> None:
    never = asyncio.Event()

    @tool(timeout=0.01)
    async def stuck() -> str:
        """Never returns."""
        await never.wait()
        return "unreachable"

    async with MiniAgents():
        message = (await FakeLLMAgent.trigger("x", replies=[ToolCall("stuck", {}), "gave up"], tools=[stuck]))[0]
    assert message.tool_calls[0].result.startswith("ToolTimeoutError: Tool stuck did not finish within its timeout")
    assert ToolTimeoutError.__mro__[1].__name__ == "ToolError"


async def test_cancelling_the_llm_call_cancels_the_running_tools() -> None:
    started, cancelled, never = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @tool
    async def wait_forever() -> str:
        """Waits."""
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    async with MiniAgents():
        call = FakeLLMAgent.initiate_call(replies=[ToolCall("wait_forever", {})], tools=[wait_forever])
        promise = await only_promise(call.reply_sequence())
        waiting = asyncio.ensure_future(promise)
        await asyncio.wait_for(started.wait(), GUARD)
        assert call.cancel()
        await asyncio.wait_for(cancelled.wait(), GUARD)
        with pytest.raises(asyncio.CancelledError):
            await waiting


async def test_sync_tools_run_in_a_worker_thread() -> None:
    import threading

    main = threading.get_ident()

    @tool
    def where() -> bool:
        """Whether it runs in the event loop's thread."""
        return threading.get_ident() == main

    async with MiniAgents():
        message = (await FakeLLMAgent.trigger("x", replies=[ToolCall("where", {}), "ok"], tools=[where]))[0]
    assert message.tool_calls[0].result == "false"


async def test_bad_loop_settings_are_clear_errors_at_the_message() -> None:
    from pydantic import BaseModel

    from miniagents_nb.errors import InvalidArgumentsError

    class Answer(BaseModel):
        text: str

    cases: list[tuple[dict[str, Any], str]] = [
        ({"tool_errors": "ignore"}, "tool_errors is 'return' or 'raise'"),
        ({"max_turns": 0}, "max_turns is at least 1"),
        ({"response_format": Answer}, "cannot also take response_format="),
    ]
    async with MiniAgents():
        for settings, expected in cases:
            with pytest.raises(InvalidArgumentsError, match=expected):
                await FakeLLMAgent.trigger("x", tools=[add], **settings)


def test_partial_arguments_read_an_unfinished_tool_call() -> None:
    from miniagents_nb.ext.llms.messages import partial_arguments

    assert partial_arguments('{"city": "Os') == {"city": "Os"}
    assert partial_arguments('{"a": 1, "b": [1, 2') == {"a": 1, "b": [1, 2]}
    assert partial_arguments("") is None
    assert partial_arguments("not json") is None


async def test_default_llm_agent_takes_tools() -> None:
    from miniagents_nb.ext.llms import default_llm_agent

    async with MiniAgents():
        assistant = default_llm_agent(replies=[ToolCall("add", {"a": 2, "b": 2}), "4"], tools=[add])
        message = (await assistant.trigger("2+2"))[0]
    assert (message.content, message.tool_calls[0].result) == ("4", "4")


async def test_a_provider_may_send_arguments_before_the_name() -> None:
    from miniagents_nb.ext.llms.tool_loop import ToolTurn
    from miniagents_nb.ext.llms.tools import make_tool_set

    async with MiniAgents():
        turn = ToolTurn({}, make_tool_set([add]), 1)
        turn.add_arguments(0, '{"a": 1, ')
        turn.start_tool_call(0, "late", "add")
        turn.start_tool_call(0, "ignored", "add")
        turn.add_arguments(0, '"b": 2}')
        turn.end()
        (call,) = turn.calls
        assert (call.id, call.name, call.result().arguments) == ("late", "add", {"a": 1, "b": 2})
        assert call.agent_call is not None
        assert [message.content for message in await call.agent_call.reply_sequence()] == ["3"]


async def test_an_unknown_tool_fails_the_llm_call_with_tool_errors_raise() -> None:
    @tool
    def adder(a: int, b: int) -> int:
        """Add."""
        return a + b

    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        reply = FakeLLMAgent.trigger(
            "go", replies=[ToolCall("subtract", {}), "never"], tools=[adder], tool_errors="raise"
        )
        with pytest.raises(ToolNotFoundError, match="There is no tool named 'subtract'") as raised:
            await reply
    assert raised.value.tool_name == "subtract"
