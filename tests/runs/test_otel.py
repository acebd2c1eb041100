"""A recorded run exported as OpenTelemetry spans (the SDK's in-memory exporter): GenAI names and attributes,
parents as recorded, content only when asked for."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.ext.llms import FakeLLMAgent
from miniagents_nb.runs import RunStore
from miniagents_nb.runs.otel import export_run

from .helpers import last_run

llm = FakeLLMAgent.fork(replies=["Paris is the capital"], temperature=0.2)


@miniagent
async def geographer(ctx: InteractionContext) -> None:
    """Answers with an LLM."""
    ctx.reply(llm.trigger(ctx.message_promises))


@miniagent
async def broken(ctx: InteractionContext) -> None:
    raise KeyError("missing")


def exported(store: RunStore, include_content: bool = False) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
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
