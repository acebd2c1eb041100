"""The public observation API every view, recorder and exporter builds on (docs/architecture.md).

Events name their `AgentCall` and carry a monotonic `at`; the call tells its parent, arguments, input and reply
sequences, status, error and timestamps, and can be cancelled from any thread; `StreamCursor` reads tokens without a
task per stream; promises answer without waiting (`result_now`, `error_now`, `producer_ended`, `pieces_so_far`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from miniagents_nb import (
    AgentCallStatus,
    AgentDefinition,
    InteractionContext,
    MiniAgents,
    StreamCursor,
    TextMessage,
    miniagent,
)
from miniagents_nb.errors import HandlerDefinitionError, PromiseNotReadyError
from miniagents_nb.events import (
    AgentCallFailed,
    AgentCallQueued,
    AgentCallStarted,
    MessageReplied,
    MiniAgentsEvent,
    ObservedCall,
    from_wall_clock,
    wall_clock,
)
from miniagents_nb.messages import MessageTokenAppender
from miniagents_nb.promising import PromisingContext, StreamedPromise
from miniagents_nb.promising.context import current_blocking_runner, install_blocking_runner


@miniagent
async def child(ctx: InteractionContext, word: str = "child") -> None:
    ctx.reply(word)


@miniagent
async def parent(ctx: InteractionContext) -> None:
    ctx.reply(child.trigger(word="nested"))


@miniagent
async def failing(ctx: InteractionContext) -> None:
    raise ValueError("boom")


async def test_events_name_their_call_and_carry_monotonic_times() -> None:
    events: list[MiniAgentsEvent] = []
    before = time.monotonic()
    async with MiniAgents() as context:
        context.subscribe(events.append)
        replies = parent.trigger()
        assert [str(message) for message in await replies] == ["nested"]
    after = time.monotonic()

    queued = [event for event in events if isinstance(event, AgentCallQueued)]
    assert [event.agent.alias for event in queued] == ["PARENT", "CHILD"]
    outer_call, inner_call = (event.call for event in queued)
    assert inner_call.parent is outer_call
    assert outer_call.parent is None
    assert inner_call.kwargs == {"word": "nested"}
    assert queued[0].reply_sequence is outer_call.reply_sequence_promise is replies
    assert inner_call.miniagents is context
    assert all(before <= event.at <= after for event in events)
    assert [event.at for event in events] == sorted(event.at for event in events)
    assert abs(wall_clock(events[0].at) - time.time()) < 60
    for call in (outer_call, inner_call):
        assert call.status is AgentCallStatus.FINISHED
        assert call.status.is_final
        assert call.started_at is not None
        assert call.ended_at is not None
        assert call.queued_at <= call.started_at <= call.ended_at
    replied = [event for event in events if isinstance(event, MessageReplied)]
    assert [(event.call, str(await event.message_promise)) for event in replied] == [(inner_call, "nested")]


async def test_a_failed_call_keeps_its_error() -> None:
    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as context:
        context.subscribe(events.append)
        replies = failing.trigger()
        with pytest.raises(ValueError, match="boom"):
            await replies
    (failed,) = [event for event in events if isinstance(event, AgentCallFailed)]
    assert failed.call.status is AgentCallStatus.FAILED
    assert failed.call.error is failed.error
    assert str(failed.error) == "boom"


async def test_status_moves_from_queued_to_running_to_finished() -> None:
    seen: list[AgentCallStatus] = []
    release = asyncio.Event()

    @miniagent
    async def waits(ctx: InteractionContext) -> None:
        seen.append(ctx.call.status if ctx.call is not None else AgentCallStatus.QUEUED)
        await release.wait()

    async with MiniAgents() as context:
        calls: list[Any] = []
        context.subscribe(lambda event: calls.append(event.call) if isinstance(event, AgentCallQueued) else None)
        replies = waits.trigger()
        (call,) = calls
        assert call.status is AgentCallStatus.QUEUED
        assert call.started_at is None
        started = asyncio.Event()
        context.subscribe(lambda event: started.set() if isinstance(event, AgentCallStarted) else None)
        await started.wait()
        assert call.status is AgentCallStatus.RUNNING  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the await
        release.set()
        await replies
        assert call.status is AgentCallStatus.FINISHED
    assert seen == [AgentCallStatus.RUNNING]


async def test_cancel_from_another_thread_reaches_the_call() -> None:
    running = asyncio.Event()
    cancelled_events: list[MiniAgentsEvent] = []

    @miniagent
    async def sleeper(ctx: InteractionContext) -> None:
        running.set()
        await asyncio.Event().wait()  # until cancelled

    async with MiniAgents() as context:
        calls: list[Any] = []

        def observe(event: MiniAgentsEvent) -> None:
            if isinstance(event, AgentCallQueued):
                calls.append(event.call)
            elif event.call.status is AgentCallStatus.CANCELLED:
                cancelled_events.append(event)

        context.subscribe(observe)
        replies = sleeper.trigger()
        await running.wait()
        results: list[bool] = []
        thread = threading.Thread(target=lambda: results.append(calls[0].cancel()))
        thread.start()
        await asyncio.to_thread(thread.join)
        assert results == [True]
        with pytest.raises(asyncio.CancelledError):
            await replies
    assert calls[0].status is AgentCallStatus.CANCELLED
    assert len(cancelled_events) == 1
    assert calls[0].cancel() is False  # already ended


async def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    ran: list[str] = []

    @miniagent
    async def never(ctx: InteractionContext) -> None:
        ran.append("ran")

    async with MiniAgents() as context:
        calls: list[Any] = []
        context.subscribe(lambda event: calls.append(event.call) if isinstance(event, AgentCallQueued) else None)
        replies = never.trigger(start_soon=False)
        assert calls[0].cancel() is True
        assert calls[0].status is AgentCallStatus.CANCELLED
        with pytest.raises(asyncio.CancelledError):
            await replies
    assert ran == []


async def test_stream_cursor_takes_what_arrived_and_waits_for_more() -> None:
    async with MiniAgents():
        with MessageTokenAppender(capture_errors=True) as appender:
            promise = TextMessage.promise(message_token_streamer=appender, start_soon=False)
            cursor = StreamCursor(promise)
            assert cursor.take() == []
            assert not cursor.producer_ended
            waiter = cursor.waiter()
            assert waiter is not None
            assert cursor.waiter() is waiter
            appender.append("Hel")
            await waiter
            appender.append("lo")
            assert cursor.take() == ["Hel", "lo"]
            assert cursor.position == 2
            with pytest.raises(PromiseNotReadyError):
                cursor.result()
        assert cursor.producer_ended
        assert cursor.finished
        assert cursor.waiter() is None
        message, error = cursor.result()
        assert error is None
        assert str(message) == "Hello"
        assert promise.result_now() is message
        assert promise.error_now() is None
        assert cursor.peek() == ["Hel", "lo"] == promise.pieces_so_far


async def test_stream_cursor_end_waiter_completes_at_the_end_and_not_at_pieces() -> None:
    async with MiniAgents():
        with MessageTokenAppender(capture_errors=True) as appender:
            promise = TextMessage.promise(message_token_streamer=appender, start_soon=False)
            cursor = StreamCursor(promise)
            end = cursor.end_waiter()
            assert end is not None
            assert cursor.end_waiter() is end  # one future per cursor, however often it is asked for
            piece = cursor.waiter()
            assert piece is not None
            appender.append("Hel")
            await piece
            assert not end.done()
            appender.append("lo")
            await asyncio.sleep(0)
            assert not end.done()
        assert end is not None
        await end
        assert cursor.producer_ended
        assert cursor.end_waiter() is None
        assert cursor.take() == ["Hel", "lo"]


async def test_stream_cursor_sees_exceptions_as_pieces() -> None:
    async def tokens(_: Any) -> AsyncIterator[str]:
        yield "a"
        raise RuntimeError("cut")

    async with MiniAgents():
        promise: StreamedPromise[str, tuple[str, ...]] = StreamedPromise(streamer=tokens, start_soon=False)
        cursor = StreamCursor(promise)
        while not cursor.producer_ended:
            cursor.take()
            waiter = cursor.waiter()
            if waiter is not None:
                await waiter
        assert [repr(piece) if isinstance(piece, BaseException) else piece for piece in cursor.peek()] == [
            "a",
            "RuntimeError('cut')",
        ]
        whole, error = cursor.result()
        assert whole is None
        assert isinstance(error, RuntimeError)


async def test_cancel_producer_stops_a_pumped_stream() -> None:
    async def forever(_: Any) -> AsyncIterator[str]:
        while True:
            yield "x"
            await asyncio.sleep(0)

    async with MiniAgents():
        promise: StreamedPromise[str, tuple[str, ...]] = StreamedPromise(streamer=forever, start_soon=True)
        cursor = StreamCursor(promise)
        waiter = cursor.waiter()
        assert waiter is not None
        await waiter
        assert promise.cancel_producer() is True
        while not cursor.producer_ended:
            next_waiter = cursor.waiter()
            assert next_waiter is not None
            await next_waiter
        assert isinstance(promise.pieces_so_far[-1], asyncio.CancelledError)
        assert promise.cancel_producer() is False


async def test_result_now_before_resolution_says_what_to_do() -> None:
    async with MiniAgents():
        with MessageTokenAppender() as appender:
            promise = TextMessage.promise(message_token_streamer=appender, start_soon=False)
            with pytest.raises(PromiseNotReadyError, match="await it"):
                promise.result_now()
            appender.append("done")
        assert str(promise.result_now()) == "done"


def test_blocking_runner_installation_is_stacked() -> None:
    assert current_blocking_runner() is None

    def first(coroutine: Any) -> Any:
        coroutine.close()
        return "first"

    def second(coroutine: Any) -> Any:
        coroutine.close()
        return "second"

    uninstall_first = install_blocking_runner(first)
    uninstall_second = install_blocking_runner(second)
    assert current_blocking_runner() is second
    uninstall_second()
    assert current_blocking_runner() is first
    uninstall_first()
    assert current_blocking_runner() is None


async def test_run_under_a_running_loop_uses_the_installed_runner() -> None:
    def runner(coroutine: Any) -> Any:
        results: list[Any] = []
        thread = threading.Thread(target=lambda: results.append(asyncio.run(coroutine)))
        thread.start()
        thread.join()
        return results[0]

    async def answer() -> int:
        return 42

    uninstall = install_blocking_runner(runner)
    try:
        assert PromisingContext().run(answer()) == 42
    finally:
        uninstall()


def test_handlers_must_be_async() -> None:
    def not_async(promise: Any, result: Any) -> None:
        return None

    with pytest.raises(HandlerDefinitionError, match="async def") as error_info:
        PromisingContext(on_promise_resolved=not_async)  # type: ignore[arg-type]
    assert isinstance(error_info.value, ValueError)


async def test_deactivate_and_make_current_here() -> None:
    context = MiniAgents()
    context.activate()
    assert context.is_active
    assert MiniAgents.get_current() is context

    async def lost_context() -> bool:
        # A task created from a copy without the variable (as a notebook cell that awaited may be).
        context.make_current_here()
        return MiniAgents.get_current() is context

    assert await lost_context()
    await context.afinalize()
    assert not context.is_active


async def test_observers_read_calls_through_the_observed_call_protocol() -> None:
    """What observers are written against (`ObservedCall`) is what every `AgentCall` offers, and the agent every
    observer sees is the `MiniAgent` that was called, named by its base, `AgentDefinition`."""
    seen: list[ObservedCall] = []
    async with MiniAgents() as context:
        context.subscribe(lambda event: seen.append(event.call) if isinstance(event, AgentCallQueued) else None)
        call = child.initiate_call(word="open")
        observed: ObservedCall = call  # mypy (run over tests) proves the protocol statically
        assert observed.status is AgentCallStatus.QUEUED
        assert [str(message) for message in await call.reply_sequence()] == ["open"]
    assert seen == [call]
    assert isinstance(seen[0].agent, AgentDefinition)
    assert seen[0].agent is child
    assert seen[0].miniagents is context
    assert seen[0].status is AgentCallStatus.FINISHED
    assert seen[0].queued_at <= (seen[0].started_at or 0) <= (seen[0].ended_at or 0)


async def test_a_call_cancelled_once_started_by_its_consumer_but_before_its_task_ran_still_ends() -> None:
    """A lazy call is started by whoever consumes its replies (here the parent's background flattening), which makes
    its task; cancelling it before that task's first step used to skip the function and its ending alike, leaving
    the call queued and its replies open forever."""
    ran: list[str] = []
    parent_ready = asyncio.Event()
    calls: dict[str, Any] = {}

    @miniagent
    async def lazy_child(ctx: InteractionContext) -> None:
        ran.append("child ran")

    @miniagent
    async def holder(ctx: InteractionContext) -> None:
        ctx.reply(lazy_child.trigger(start_soon=False))
        parent_ready.set()
        await asyncio.Event().wait()  # until cancelled

    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as context:
        context.subscribe(events.append)
        replies = holder.trigger()
        await parent_ready.wait()
        for event in events:
            if isinstance(event, AgentCallQueued):
                calls[event.agent.alias] = event.call
        child_call = calls["LAZY_CHILD"]
        assert child_call.cancel() is True
        assert child_call.status is AgentCallStatus.CANCELLED
        assert child_call.cancel() is False  # once
        calls["HOLDER"].cancel()
        with pytest.raises(asyncio.CancelledError):
            await replies
    assert ran == []
    assert child_call.ended_at is not None


def test_observed_calls_are_freed_without_the_garbage_collector() -> None:
    """An observed call's `MessageReplied` hook would hold the call in a reference cycle (call → reply sequence →
    hook → call) that only the cyclic GC frees: in a big fan-out most of what observing cost. It goes once the
    replies end, so the calls of a finished run are freed by reference counting alone."""
    import gc

    from miniagents_nb.agents.call import AgentCall

    @miniagent
    async def leaf(ctx: InteractionContext, i: int) -> None:
        ctx.reply(f"leaf {i}")

    @miniagent
    async def fan(ctx: InteractionContext) -> None:
        ctx.reply([leaf.trigger(i=i) for i in range(3)])

    async def main() -> list[str]:
        context = MiniAgents()
        seen: list[str] = []
        context.subscribe(lambda event: seen.append(type(event).__name__))
        async with context:
            replies = await fan.trigger()
        assert [str(message) for message in replies] == ["leaf 0", "leaf 1", "leaf 2"]
        return seen

    gc.collect()
    gc.disable()
    try:
        seen = asyncio.run(main())
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds now was kept alive by cycles only
        gc.collect()
        cycled = [found for found in gc.garbage if isinstance(found, AgentCall)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert seen.count("MessageReplied") == 3
    assert seen.count("AgentCallFinished") == 4
    assert cycled == []


async def test_an_agent_with_an_event_clock_reports_the_moments_it_gives() -> None:
    # A call standing for work done elsewhere reads the moment of each of its events from its agent's clock, in
    # the order they are emitted: made, started, each reply, ended.
    moments = iter([10.0, 11.0, 12.5, 13.0, 14.0])
    clocked = child.with_event_clock(lambda: next(moments))
    assert clocked.event_clock is not None
    assert child.event_clock is None  # a fork: the agent itself keeps the real clock
    assert clocked.fork(alias="CLOCKED").event_clock is clocked.event_clock
    events: list[MiniAgentsEvent] = []
    before = time.monotonic()
    async with MiniAgents() as context:
        context.subscribe(events.append)
        call = clocked.initiate_call(word="a")
        call.send_message("input").finish()
        assert [str(message) for message in await call.reply_sequence_promise] == ["a"]
        plain = await child.trigger(word="b")
    after = time.monotonic()
    assert [str(message) for message in plain] == ["b"]
    mine = [(type(event).__name__, event.at) for event in events if event.call is call]
    assert mine == [
        ("AgentCallQueued", 10.0),
        ("AgentCallStarted", 11.0),
        ("MessageReplied", 12.5),
        ("AgentCallFinished", 13.0),
    ]
    assert (call.queued_at, call.started_at, call.ended_at) == (10.0, 11.0, 13.0)
    others = [event.at for event in events if event.call is not call]
    assert others
    assert all(before <= at <= after for at in others)  # the other calls read the real clock
    assert from_wall_clock(wall_clock(12.5)) == pytest.approx(12.5)
