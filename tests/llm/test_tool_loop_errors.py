"""The tool loop's own errors: a tool failure the loop returns to the model is handled (an error result, never also
logged as an error nobody handled, whatever the context's `errors_as_messages`); with `tool_errors="raise"` it is
a failure, logged once under the tool's agent trace; `ToolLoopLimitError.turns` is frozen like a message's fields."""

from __future__ import annotations

import logging
import pickle

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.events import AgentCallFailed, MiniAgentsEvent
from miniagents_nb.ext.llms import FakeLLMAgent, ToolCall, ToolLoopLimitError, tool
from miniagents_nb.messages import ErrorMessage
from miniagents_nb.promising.ext.frozen import Frozen


@tool
def lookup(city: str) -> int:
    """The population of a city."""
    raise KeyError(f"no such city: {city}")


SCRIPT = [ToolCall("lookup", {"city": "Atlantis"}, id="c1"), "I could not find it."]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("errors_as_messages", [False, True])
async def test_a_failure_returned_to_the_model_is_handled_not_logged(
    caplog: pytest.LogCaptureFixture, errors_as_messages: bool
) -> None:
    events: list[MiniAgentsEvent] = []
    caplog.set_level(logging.DEBUG, logger="miniagents_nb")
    async with MiniAgents(errors_as_messages=errors_as_messages) as context:
        context.subscribe(events.append)
        message = (await FakeLLMAgent.trigger("Population of Atlantis?", replies=SCRIPT, tools=[lookup]))[0]
    assert not isinstance(message, ErrorMessage)
    assert message.content == "I could not find it."
    (call,) = message.tool_calls
    assert (call.result, call.is_error) == ("KeyError: 'no such city: Atlantis'", True)
    # the tool's call still failed (a view marks it so) ...
    assert [event.call.agent.alias for event in events if isinstance(event, AgentCallFailed)] == ["lookup"]
    # ... but the loop handled it: no ERROR record (a DEBUG one keeps the traceback for whoever wants it)
    assert error_records(caplog) == []
    assert any("AN ERROR OCCURRED IN AGENT lookup" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("errors_as_messages", [False, True])
async def test_with_tool_errors_raise_the_failure_is_logged_once_under_the_tools_trace(
    caplog: pytest.LogCaptureFixture, errors_as_messages: bool
) -> None:
    caplog.set_level(logging.ERROR, logger="miniagents_nb")
    async with MiniAgents(errors_as_messages=errors_as_messages):
        reply = FakeLLMAgent.trigger("Population of Atlantis?", replies=SCRIPT, tools=[lookup], tool_errors="raise")
        if errors_as_messages:
            (message,) = await reply
            assert isinstance(message, ErrorMessage)
            assert str(message.content).endswith("KeyError: 'no such city: Atlantis'")
        else:
            with pytest.raises(KeyError, match="no such city"):
                await reply
    (record,) = error_records(caplog)
    assert record.getMessage() == "AN ERROR OCCURRED IN AGENT lookup (agent trace: lookup <- FAKE_LLM_AGENT)"


async def test_the_turns_of_a_loop_limit_error_are_frozen() -> None:
    @tool
    def again(n: int) -> str:
        """Asks to be called again."""
        return "again"

    async with MiniAgents():
        llm = FakeLLMAgent.fork(replies=[ToolCall("again", {"n": 1}), ToolCall("again", {"n": 2})], tools=[again])
        with pytest.raises(ToolLoopLimitError) as raised:
            await llm.trigger("loop", max_turns=2)
    turns = raised.value.turns
    assert isinstance(turns, tuple)
    assert all(isinstance(turn, Frozen) for turn in turns)
    # read the way the final message's tool_turns are read
    assert [turn.tool_calls[0].arguments.n for turn in turns] == [1, 2]
    assert [(turn.tool_calls[0].result, turn.tool_calls[0].is_error) for turn in turns] == [
        ("again", False),
        ("", False),
    ]
    with pytest.raises(TypeError):
        turns[0]["content"] = "changed"
    copy = pickle.loads(pickle.dumps(raised.value))
    assert isinstance(copy, ToolLoopLimitError)
    assert isinstance(copy, MiniAgentsError)
    assert (str(copy), copy.turns) == (str(raised.value), turns)
    assert ToolLoopLimitError("x", turns=[{"content": "a", "tool_calls": ()}]).turns[0].content == "a"
