"""A recorded run exported as OpenTelemetry spans (the SDK's in-memory exporter): GenAI names and attributes,
parents as recorded, tool executions as `execute_tool` spans, content only when asked for, and a clear error naming
the extra when `opentelemetry` is missing."""

from __future__ import annotations

import importlib
import sys

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from miniagents_nb import MiniAgents
from miniagents_nb.runs import RunStore
from miniagents_nb.runs.otel import export_run

from .helpers import last_run
from .otel_helpers import broken, by_name, geographer, in_memory, tool_llm


def exported(store: RunStore, include_content: bool = False) -> InMemorySpanExporter:
    exporter, provider = in_memory()
    export_run(last_run(store), tracer_provider=provider, include_content=include_content)
    return exporter


async def test_calls_and_llm_requests_become_genai_spans(store: RunStore) -> None:
    async with MiniAgents(record_to=store):
        await geographer.trigger("What is the capital of France?")
    spans = {span.name: span for span in exported(store).get_finished_spans()}
    assert set(spans) == {"invoke_agent GEOGRAPHER", "invoke_agent FAKE_LLM_AGENT", "chat fake-llm"}
    agent, llm_call, chat = (
        spans["invoke_agent GEOGRAPHER"],
        spans["invoke_agent FAKE_LLM_AGENT"],
        spans["chat fake-llm"],
    )
    assert agent.attributes is not None
    assert chat.attributes is not None
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "GEOGRAPHER"
    assert agent.attributes["gen_ai.agent.description"] == "Answers with an LLM."
    assert "gen_ai.input.messages" not in agent.attributes  # content only when opted in
    assert agent.parent is None
    assert llm_call.parent is not None
    assert llm_call.parent.span_id == agent.context.span_id
    assert chat.parent is not None
    assert chat.parent.span_id == llm_call.context.span_id
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "fake"
    assert chat.attributes["gen_ai.request.model"] == "fake-llm"
    assert chat.attributes["gen_ai.request.temperature"] == 0.2
    output_tokens = chat.attributes["gen_ai.usage.output_tokens"]
    assert isinstance(output_tokens, int)
    assert output_tokens > 0
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert agent.start_time is not None
    assert agent.end_time is not None
    assert chat.end_time is not None
    assert agent.start_time <= chat.end_time <= agent.end_time


async def test_content_is_exported_when_asked_for_and_failures_have_an_error_status(store: RunStore) -> None:
    async with MiniAgents(record_to=store, log_level_for_errors=0, errors_as_messages=True):
        await geographer.trigger("What is the capital of France?")
        await broken.trigger()
    spans = exported(store, include_content=True).get_finished_spans()
    by_name = {span.name: span for span in spans}
    chat = by_name["chat fake-llm"]
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.output.messages"] == '["Paris is the capital"]'
    failed = by_name["invoke_agent BROKEN"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "KeyError"


async def test_tool_executions_become_execute_tool_spans_beside_the_chat_span_of_their_llm_call(
    store: RunStore,
) -> None:
    async with MiniAgents(record_to=store):
        await tool_llm.trigger("What is 1 + 2?")
    exporter, provider = in_memory()
    export_run(last_run(store), tracer_provider=provider)
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"invoke_agent FAKE_LLM_AGENT", "chat fake-llm", "execute_tool add", "execute_tool subtract"}
    llm_call, chat = spans["invoke_agent FAKE_LLM_AGENT"], spans["chat fake-llm"]
    added, missing = spans["execute_tool add"], spans["execute_tool subtract"]
    # Each execution is an agent call under the LLM call: its span is a child of the LLM call's span, beside the one
    # `chat` span of the call's one reply (the loop's turns), and within that request's time.
    for span in (chat, added, missing):
        assert span.parent is not None
        assert span.parent.span_id == llm_call.context.span_id
    for span in (added, missing):
        assert chat.start_time is not None
        assert chat.end_time is not None
        assert span.start_time is not None
        assert span.end_time is not None
        assert chat.start_time <= span.start_time <= span.end_time <= chat.end_time
    assert added.attributes is not None
    assert dict(added.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "add",
        "gen_ai.tool.call.id": "c1",
        "gen_ai.tool.description": "Add two integers.",
        "gen_ai.tool.type": "function",
        "miniagents_nb.call_id": 2,
        "miniagents_nb.status": "finished",
    }
    assert added.status.status_code is StatusCode.UNSET
    assert missing.attributes is not None
    assert missing.attributes["gen_ai.tool.call.id"] == "c2"
    assert missing.attributes["error.type"] == "ToolNotFoundError"
    assert missing.status.status_code is StatusCode.ERROR


async def test_a_tool_span_carries_its_arguments_and_result_only_when_asked_for(store: RunStore) -> None:
    async with MiniAgents(record_to=store):
        await tool_llm.trigger("What is 1 + 2?")
    exporter, provider = in_memory()
    export_run(last_run(store), tracer_provider=provider, include_content=True)
    added = by_name(exporter.get_finished_spans())["execute_tool add"]
    assert added.attributes is not None
    assert added.attributes["gen_ai.tool.call.arguments"] == '{"a": 1, "b": 2}'
    assert added.attributes["gen_ai.tool.call.result"] == "3"
    assert "gen_ai.input.messages" not in added.attributes
    without = by_name(exported(store).get_finished_spans())["execute_tool add"]
    assert without.attributes is not None
    assert not {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"} & set(without.attributes)


def test_without_the_extra_the_import_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    for name in ("miniagents_nb.runs.otel", "miniagents_nb.runs.otel_live", "miniagents_nb.runs.otel_attributes"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError, match=r'pip install "miniagents-nb\[otel\]"'):
        importlib.import_module("miniagents_nb.runs.otel")
