"""A recording that takes plain arguments (`PlainRecording`): told of every call without event objects while it is
its context's only observer, and given the same facts as events as soon as anyone else watches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.agents import AgentCallStatus
from miniagents_nb.agents.recording import PlainRecording
from miniagents_nb.events import (
    AgentCallCancelled,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    MessageReplied,
    MiniAgentsEvent,
)

_EVENT_KINDS: dict[type, str] = {
    AgentCallQueued: "queued",
    AgentCallStarted: "started",
    MessageReplied: "replied",
    AgentCallFinished: "finished",
    AgentCallFailed: "failed",
    AgentCallCancelled: "cancelled",
}


class LogRecording:
    """Notes what it is told, and how (`plain` or `event`), in one list."""

    never_raises = True

    def __init__(self) -> None:
        self.log: list[tuple[str, str, str, Any]] = []
        self.closed = False

    def observe(self, event: MiniAgentsEvent) -> None:
        kind = _EVENT_KINDS.get(type(event))
        if kind is not None:
            self.log.append(("event", kind, event.call.agent.alias, event.at))

    def call_queued(self, call: Any, at: float) -> None:
        assert at == call.queued_at
        self.log.append(("plain", "queued", call.agent.alias, at))

    def call_started(self, call: Any, at: float) -> None:
        assert at == call.started_at
        self.log.append(("plain", "started", call.agent.alias, at))

    def message_replied(self, call: Any, at: float, message_promise: Any) -> None:
        self.log.append(("plain", "replied", call.agent.alias, at))

    def call_ended(self, call: Any, at: float, status: AgentCallStatus, error: BaseException | None) -> None:
        assert at == call.ended_at
        assert status is call.status
        assert (error is not None) == (status is AgentCallStatus.FAILED)
        assert error is call.error
        self.log.append(("plain", status.value, call.agent.alias, at))

    def close(self) -> None:
        self.closed = True

    def facts(self) -> list[tuple[str, str]]:
        """What was said, however it was said."""
        return [(kind, alias) for _, kind, alias, _ in self.log]

    def ways(self) -> set[str]:
        return {way for way, *_ in self.log}


class LogRecorder:
    def __init__(self) -> None:
        self.recordings: list[LogRecording] = []

    def open_recording(self, miniagents: Any) -> LogRecording:
        recording = LogRecording()
        self.recordings.append(recording)
        return recording


@miniagent
async def child(ctx: InteractionContext, fail: bool = False) -> None:
    ctx.reply("child says")
    if fail:
        raise ValueError("child failed on purpose")


@miniagent
async def parent(ctx: InteractionContext) -> None:
    ctx.reply([child.trigger(), child.trigger(fail=True, errors_as_messages=True)])


_EXPECTED = {
    ("queued", "PARENT"),
    ("started", "PARENT"),
    ("queued", "CHILD"),
    ("started", "CHILD"),
    ("replied", "CHILD"),
    ("finished", "CHILD"),
    ("failed", "CHILD"),
    ("finished", "PARENT"),
}


def test_a_log_recording_is_a_plain_recording() -> None:
    assert isinstance(LogRecording(), PlainRecording)


async def test_the_only_observer_is_told_with_plain_arguments() -> None:
    recorder = LogRecorder()
    async with MiniAgents(record_to=recorder):
        replies = await parent.trigger()
    assert len(replies) == 3  # two replies and the failure as a message
    [recording] = recorder.recordings
    assert recording.closed
    assert recording.ways() == {"plain"}
    facts = recording.facts()
    assert set(facts) == _EXPECTED
    assert facts.count(("replied", "CHILD")) == 2
    assert facts.count(("queued", "CHILD")) == 2
    assert facts[:2] == [("queued", "PARENT"), ("started", "PARENT")]


async def test_with_another_observer_the_same_facts_come_as_events() -> None:
    alone, watched = LogRecorder(), LogRecorder()
    async with MiniAgents(record_to=alone):
        await parent.trigger()
    seen: list[MiniAgentsEvent] = []
    async with MiniAgents(record_to=watched) as context:
        context.subscribe(seen.append)
        await parent.trigger()
    [plain], [evented] = alone.recordings, watched.recordings
    assert evented.ways() == {"event"}
    assert evented.facts() == plain.facts()
    assert len(seen) == len(evented.log)


async def test_a_subscription_mid_run_switches_to_events_and_loses_nothing() -> None:
    recorder = LogRecorder()
    subscribed = asyncio.Event()
    seen: list[MiniAgentsEvent] = []

    @miniagent
    async def waiter(ctx: InteractionContext) -> None:
        ctx.reply("before")
        await subscribed.wait()
        ctx.reply([child.trigger()])

    async with MiniAgents(record_to=recorder) as context:
        replies = waiter.trigger()
        await asyncio.sleep(0)  # the waiter starts and replies "before" (told plainly)
        unsubscribe = context.subscribe(seen.append)
        subscribed.set()
        await replies
        unsubscribe()
        await child.trigger()  # the recording is the only observer again
    [recording] = recorder.recordings
    ways = [way for way, *_ in recording.log]
    first_event = ways.index("event")
    assert set(ways[:first_event]) == {"plain"}
    assert recording.log[-1][0] == "plain"
    assert recording.facts() == [
        ("queued", "WAITER"),
        ("started", "WAITER"),
        ("replied", "WAITER"),
        ("queued", "CHILD"),
        ("finished", "WAITER"),  # (the child starts at the next task switch)
        ("started", "CHILD"),
        ("replied", "CHILD"),
        ("finished", "CHILD"),
        ("queued", "CHILD"),
        ("started", "CHILD"),
        ("replied", "CHILD"),
        ("finished", "CHILD"),
    ]
    assert [_EVENT_KINDS[type(event)] for event in seen] == [kind for _, kind, _, _ in recording.log[first_event:-4]]


async def test_a_cancelled_call_is_told_plainly_with_its_status() -> None:
    recorder = LogRecorder()
    started = asyncio.Event()

    @miniagent
    async def sleeper(ctx: InteractionContext) -> None:
        started.set()
        await asyncio.Event().wait()

    async with MiniAgents(record_to=recorder):
        call = sleeper.initiate_call()
        call.finish()
        await started.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call.reply_sequence()
    [recording] = recorder.recordings
    assert recording.ways() == {"plain"}
    assert recording.facts() == [("queued", "SLEEPER"), ("started", "SLEEPER"), ("cancelled", "SLEEPER")]


async def test_a_recording_that_is_not_plain_gets_events() -> None:
    class EventsOnly:
        never_raises = True

        def __init__(self) -> None:
            self.events: list[MiniAgentsEvent] = []

        def observe(self, event: MiniAgentsEvent) -> None:
            self.events.append(event)

        def close(self) -> None:
            pass

    recording = EventsOnly()

    class Recorder:
        def open_recording(self, miniagents: Any) -> EventsOnly:
            return recording

    async with MiniAgents(record_to=Recorder()):
        await parent.trigger()
    assert {(_EVENT_KINDS[type(event)], event.call.agent.alias) for event in recording.events} == _EXPECTED
