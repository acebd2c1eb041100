"""Live OpenTelemetry export (`export_live`): spans start and end as calls do, on the public observation API, and
give what the export of the same run once recorded gives; failures have an error status; content only when asked
for; a failing exporter never breaks the agents. Order is checked with explicit events, never sleeps."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from miniagents_nb import InteractionContext, MessageTokenAppender, MiniAgents, TextMessage, miniagent
from miniagents_nb.events import AgentCallFinished, MiniAgentsEvent, wall_clock
from miniagents_nb.runs import RunStore
from miniagents_nb.runs.otel import LiveExport, export_live, export_run

from .helpers import aggregator, last_run
from .otel_helpers import broken, by_name, geographer, in_memory, span_tree, tool_llm

GUARD = 5.0  # a wrong implementation fails on this bound instead of hanging; a right one never waits for it
CLOCK_SLACK_NS = 500_000_000
"""The wall clock may be slewed a little against the monotonic one since `wall_clock` took their difference."""


@miniagent
async def team(ctx: InteractionContext) -> None:
    """Fans out to children, asks an LLM, uses tools and has a helper fail."""
    ctx.reply(aggregator.trigger(ctx.message_promises, count=2))
    ctx.reply(geographer.trigger(ctx.message_promises))
    ctx.reply(tool_llm.trigger("What is 1 + 2?"))
    ctx.reply(broken.trigger())


@pytest.mark.parametrize("include_content", [False, True])
async def test_the_live_export_gives_the_spans_of_the_recorded_export(store: RunStore, include_content: bool) -> None:
    live, provider = in_memory()
    async with MiniAgents(record_to=store, log_level_for_errors=0, errors_as_messages=True) as miniagents:
        with export_live(miniagents, tracer_provider=provider, include_content=include_content):
            await team.trigger("What is the capital of France?")
    recorded, recorded_provider = in_memory()
    export_run(last_run(store), tracer_provider=recorded_provider, include_content=include_content)
    live_tree = span_tree(live.get_finished_spans())
    assert live_tree == span_tree(recorded.get_finished_spans())
    assert {(name, parent) for name, parent, *_ in live_tree} == {
        ("invoke_agent TEAM", None),
        ("invoke_agent AGGREGATOR", "invoke_agent TEAM"),
        ("invoke_agent CHILD", "invoke_agent AGGREGATOR"),
        ("invoke_agent GEOGRAPHER", "invoke_agent TEAM"),
        ("invoke_agent FAKE_LLM_AGENT", "invoke_agent GEOGRAPHER"),
        ("invoke_agent FAKE_LLM_AGENT", "invoke_agent TEAM"),
        ("chat fake-llm", "invoke_agent FAKE_LLM_AGENT"),
        ("execute_tool add", "invoke_agent FAKE_LLM_AGENT"),
        ("execute_tool subtract", "invoke_agent FAKE_LLM_AGENT"),
        ("invoke_agent BROKEN", "invoke_agent TEAM"),
    }
    assert len(live_tree) == 12  # two CHILD calls, two LLM calls with a chat span each


async def test_spans_start_when_calls_start_and_end_when_they_have_ended() -> None:
    running, release = asyncio.Event(), asyncio.Event()
    started: list[str] = []

    class Started(SpanProcessor):
        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            started.append(span.name)

    @miniagent
    async def waiter(ctx: InteractionContext) -> None:
        running.set()
        await release.wait()
        ctx.reply("done")

    @miniagent
    async def caller(ctx: InteractionContext) -> None:
        ctx.reply(waiter.trigger())

    exporter, provider = in_memory()
    provider.add_span_processor(Started())
    before = time.time_ns()
    async with MiniAgents() as miniagents:
        with export_live(miniagents, tracer_provider=provider):
            reply = caller.trigger()
            await asyncio.wait_for(running.wait(), GUARD)
            assert started == ["invoke_agent CALLER", "invoke_agent WAITER"]
            assert exporter.get_finished_spans() == ()  # CALLER's agent has returned; what it replied has not ended
            release.set()
            assert [str(message) for message in await reply] == ["done"]
    after = time.time_ns()
    spans = by_name(exporter.get_finished_spans())
    outer, inner = spans["invoke_agent CALLER"], spans["invoke_agent WAITER"]
    assert [span.name for span in exporter.get_finished_spans()] == ["invoke_agent WAITER", "invoke_agent CALLER"]
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    times = []
    for span in (outer, inner):  # real times: the events' monotonic times on the wall clock
        assert span.start_time is not None
        assert span.end_time is not None
        assert before - CLOCK_SLACK_NS <= span.start_time <= span.end_time <= after + CLOCK_SLACK_NS
        times.append((span.start_time, span.end_time))
    (outer_start, outer_end), (inner_start, inner_end) = times
    assert outer_start <= inner_start
    assert inner_end <= outer_end


async def test_a_live_failure_has_an_error_status_and_content_is_exported_only_when_asked_for() -> None:
    plain, provider = in_memory()
    with_content, content_provider = in_memory()
    async with MiniAgents(log_level_for_errors=0, errors_as_messages=True) as miniagents:
        with (
            export_live(miniagents, tracer_provider=provider),
            export_live(miniagents, tracer_provider=content_provider, include_content=True),
        ):
            await geographer.trigger("What is the capital of France?")
            await broken.trigger()
    failed = by_name(plain.get_finished_spans())["invoke_agent BROKEN"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "KeyError: 'missing'"
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "KeyError"
    assert failed.attributes["miniagents_nb.status"] == "failed"
    for span in plain.get_finished_spans():
        assert span.attributes is not None
        assert not {"gen_ai.input.messages", "gen_ai.output.messages"} & set(span.attributes)
    chat = by_name(with_content.get_finished_spans())["chat fake-llm"]
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.input.messages"] == '["What is the capital of France?"]'
    assert chat.attributes["gen_ai.output.messages"] == '["Paris is the capital"]'


async def test_a_span_waits_for_a_stream_that_outlives_its_agent() -> None:
    ended = asyncio.Event()
    finished = asyncio.Event()
    appenders: list[MessageTokenAppender] = []

    class Ended(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            ended.set()

    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        appender = MessageTokenAppender(capture_errors=True)
        appenders.append(appender)
        appender.open()
        appender.append("partial ")
        ctx.reply(TextMessage.promise(message_token_streamer=appender, start_soon=False))

    finished_at: list[float] = []

    def on_event(event: MiniAgentsEvent) -> None:
        if isinstance(event, AgentCallFinished):
            finished_at.append(event.at)
            finished.set()

    exporter, provider = in_memory()
    provider.add_span_processor(Ended())
    async with MiniAgents() as miniagents:
        miniagents.subscribe(on_event)
        with export_live(miniagents, tracer_provider=provider, poll_interval_s=0.001):
            reply = streaming.trigger()
            await asyncio.wait_for(finished.wait(), GUARD)
            assert not ended.is_set()  # the agent has returned, its message is still streaming
            (appender,) = appenders
            appender.append("whole")
            appender.close()
            await asyncio.wait_for(ended.wait(), GUARD)  # seen ended at the next look
            assert [str(message) for message in await reply] == ["partial whole"]
    (span,) = exporter.get_finished_spans()
    assert span.name == "invoke_agent STREAMING"
    assert span.end_time is not None
    (agent_ended,) = finished_at
    assert span.end_time > int(wall_clock(agent_ended) * 1e9)  # when the stream ended, after its agent did


async def test_a_failing_exporter_never_breaks_the_agents(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(SpanProcessor):
        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            raise RuntimeError("the collector is down")

    _, provider = in_memory()
    provider.add_span_processor(Failing())
    with caplog.at_level(logging.WARNING, logger="miniagents_nb.runs"):
        async with MiniAgents() as miniagents:
            with export_live(miniagents, tracer_provider=provider) as export:
                replies = await aggregator.trigger("go", count=2)
                assert [str(message) for message in replies] == ["c0a", "c0b", "c1a", "c1b"]
    assert isinstance(export.fault, RuntimeError)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per export, however often it fails
    assert "OpenTelemetry export" in warnings[0].getMessage()


async def test_closing_ends_what_is_still_open_and_stops_observing() -> None:
    running, release = asyncio.Event(), asyncio.Event()

    @miniagent
    async def waiter(ctx: InteractionContext) -> None:
        running.set()
        await release.wait()
        ctx.reply("done")

    exporter, provider = in_memory()
    async with MiniAgents() as miniagents:
        export = LiveExport(tracer_provider=provider).subscribe(miniagents)
        reply = waiter.trigger()
        await asyncio.wait_for(running.wait(), GUARD)
        export.close()
        (span,) = exporter.get_finished_spans()
        assert span.name == "invoke_agent WAITER"
        assert span.attributes is not None
        assert span.attributes["miniagents_nb.status"] == "running"
        release.set()
        assert [str(message) for message in await reply] == ["done"]
    assert len(exporter.get_finished_spans()) == 1  # nothing more once closed
