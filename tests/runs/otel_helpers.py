"""What the OpenTelemetry export tests share: agents (one that asks a fake LLM, one that fails, a tool-calling fake
LLM), an in-memory tracer provider, spans by name, and the span tree as plain values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from miniagents_nb import InteractionContext, miniagent
from miniagents_nb.ext.llms import FakeLLMAgent, ToolCall, tool

__all__ = ["add", "broken", "by_name", "geographer", "in_memory", "span_tree", "tool_llm"]

llm = FakeLLMAgent.fork(replies=["Paris is the capital"], temperature=0.2)


@miniagent
async def geographer(ctx: InteractionContext) -> None:
    """Answers with an LLM."""
    ctx.reply(llm.trigger(ctx.message_promises))


@miniagent
async def broken(ctx: InteractionContext) -> None:
    raise KeyError("missing")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


tool_llm = FakeLLMAgent.fork(
    replies=[["Let me add.", ToolCall("add", {"a": 1, "b": 2}, id="c1"), ToolCall("subtract", {}, id="c2")], "3."],
    tools=[add],
    temperature=0.1,
)
"""One turn that calls `add` and a tool the call does not have, then an answer."""


def in_memory() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def by_name(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), "span names are unique in these tests"
    return named


def span_tree(spans: Sequence[ReadableSpan]) -> list[tuple[Any, ...]]:
    """Each span as (name, its parent's name, attributes, status code, status description, kind), sorted: what two
    exports of one run must agree on (not ids, not times)."""
    names = {span.context.span_id: span.name for span in spans}
    return sorted(
        (
            span.name,
            None if span.parent is None else names[span.parent.span_id],
            sorted(dict(span.attributes or {}).items()),
            span.status.status_code.name,
            span.status.description,
            span.kind.name,
        )
        for span in spans
    )
