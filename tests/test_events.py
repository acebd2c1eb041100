"""The observer API (`MiniAgents.subscribe`, `miniagents_nb.events`) and `AgentCall.cancel`."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import pytest

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.events import (
    AgentCallCancelled,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    MessageReplied,
    MiniAgentsEvent,
)


def describe(event: MiniAgentsEvent) -> tuple[Any, ...]:
    if isinstance(event, MessageReplied):
        return ("replied", event.call_id)
    assert isinstance(
        event, (AgentCallQueued, AgentCallStarted, AgentCallFinished, AgentCallFailed, AgentCallCancelled)
    )
    return (type(event).__name__.removeprefix("AgentCall"), event.call_id, event.agent.alias, event.caller_call_id)


@miniagent
async def inner(ctx: InteractionContext) -> None:
    ctx.reply("from inner")


@miniagent
async def outer(ctx: InteractionContext) -> None:
    ctx.reply(["from outer", inner.trigger()])


async def test_events_of_a_nested_call_in_order_with_callers() -> None:
    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as mini_agents:
        mini_agents.subscribe(events.append)
        replies = outer.trigger()
        messages = await replies
    assert [str(message) for message in messages] == ["from outer", "from inner"]
    assert [describe(event) for event in events] == [
        ("Queued", 1, "OUTER", None),
        ("Started", 1, "OUTER", None),
        ("Queued", 2, "INNER", 1),  # `inner.trigger()` is evaluated before `reply` gets its list
        ("replied", 1),
        ("Finished", 1, "OUTER", None),
        ("Started", 2, "INNER", 1),
        ("replied", 2),
        ("Finished", 2, "INNER", 1),
    ]
    queued = events[0]
    assert isinstance(queued, AgentCallQueued)
    assert queued.reply_sequence is replies
    replied = [event for event in events if isinstance(event, MessageReplied)]
    assert [str(await event.message_promise) for event in replied] == ["from outer", "from inner"]
    assert [promise async for promise in replies][1] is replied[1].message_promise


async def test_failure_event_carries_the_error_and_the_error_still_reaches_consumers() -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        raise ValueError("boom")

    events: list[MiniAgentsEvent] = []
    async with MiniAgents(logger=logging.getLogger("test-events")) as mini_agents:
        mini_agents.subscribe(events.append)
        with pytest.raises(ValueError, match="boom"):
            await failing.trigger()
    failed = [event for event in events if isinstance(event, AgentCallFailed)]
    assert len(failed) == 1
    assert str(failed[0].error) == "boom"


async def test_cancel_a_running_call_and_a_call_that_never_started() -> None:
    entered = asyncio.Event()

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        ctx.reply("before")
        entered.set()
        await asyncio.Event().wait()

    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as mini_agents:
        mini_agents.subscribe(events.append)
        running = waiting.initiate_call()
        replies = running.reply_sequence()
        await entered.wait()
        assert running.cancel() is True
        received: list[str] = []

        async def consume() -> None:
            async for promise in replies:
                received.append(str(await promise))

        with pytest.raises(asyncio.CancelledError):
            await consume()
        assert received == ["before"]
        assert running.cancel() is False  # already done

        lazy = waiting.initiate_call(start_soon=False)
        assert lazy.cancel() is True
        with pytest.raises(asyncio.CancelledError):
            await lazy.reply_sequence()
        assert not entered.is_set() or lazy._task is None  # the lazy agent never ran
    cancelled = [event.call_id for event in events if isinstance(event, AgentCallCancelled)]
    assert cancelled == [running.call_id, lazy.call_id]


async def test_unobserved_calls_have_no_id_and_unsubscribe_stops_events() -> None:
    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as mini_agents:
        call = inner.initiate_call()
        assert call.call_id is None
        await call.reply_sequence()
        unsubscribe = mini_agents.subscribe(events.append)
        await inner.trigger()
        seen = len(events)
        unsubscribe()
        await inner.trigger()
    assert seen == 4  # queued, started, replied, finished
    assert len(events) == seen


async def test_a_failing_observer_is_logged_and_never_breaks_the_agents(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: MiniAgentsEvent) -> None:
        raise RuntimeError("observer bug")

    async with MiniAgents() as mini_agents:
        mini_agents.subscribe(broken)
        messages = await inner.trigger()
    assert [str(message) for message in messages] == ["from inner"]
    assert "AN OBSERVER FAILED" in caplog.text


async def test_observers_of_an_outer_context_see_calls_of_a_nested_context() -> None:
    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as outer_context:
        outer_context.subscribe(events.append)
        async with MiniAgents():
            await inner.trigger()
    assert [describe(event)[0] for event in events] == ["Queued", "Started", "replied", "Finished"]


async def test_a_cancellation_swallowed_inside_the_agent_still_reports_cancelled() -> None:
    entered = asyncio.Event()

    @miniagent
    async def swallowing(ctx: InteractionContext) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ctx.reply("cleaned up")  # e.g. a capturing appender: the agent returns normally

    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as mini_agents:
        mini_agents.subscribe(events.append)
        call = swallowing.initiate_call()
        replies = call.reply_sequence()
        await entered.wait()
        call.cancel()
        assert [str(message) for message in await replies] == ["cleaned up"]
    last = events[-1]
    # Python 3.11+ can tell that the task was cancelled (`Task.cancelling()`); 3.10 cannot, and reports it finished.
    expected = AgentCallCancelled if sys.version_info >= (3, 11) else AgentCallFinished
    assert type(last) is expected
