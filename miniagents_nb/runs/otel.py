"""Runs as OpenTelemetry spans, following the GenAI semantic conventions (`pip install "miniagents-nb[otel]"`):
`export_run` for a recorded run, `export_live` for a context's calls while they run (`miniagents_nb.runs.otel_live`).

Each call becomes an `invoke_agent <alias>` span (`gen_ai.operation.name`, `gen_ai.agent.name`,
`gen_ai.agent.description`), a child of its parent call's span, from when it was queued to when it and everything it
replied was done. A call that executes a model's tool call (the tool loop of the LLM agents makes each execution an
agent call under the LLM call) becomes an `execute_tool <tool name>` span instead (`gen_ai.tool.name`,
`gen_ai.tool.call.id`, `gen_ai.tool.description`, `gen_ai.tool.type`), under the LLM call's span, beside its `chat`
span. Each LLM request a call's reply describes becomes a `chat <model>` child span (`gen_ai.provider.name`,
`gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens` / `output_tokens`,
`gen_ai.response.finish_reasons`, the request parameters as `gen_ai.request.*`); the tool loop's turns are one
request of one reply, so one `chat` span. Message content is exported only when asked for (`include_content=True`:
`gen_ai.input.messages` / `gen_ai.output.messages` as JSON, a tool's `gen_ai.tool.call.arguments` /
`gen_ai.tool.call.result`). A failed call's span has an error status and `error.type`. Names and attributes come
from `miniagents_nb.runs.otel_attributes`, which both exports share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniagents_nb.runs.otel_attributes import (
    end_call_span,
    epoch_ns,
    export_chat_span,
    start_call_span,
    tool_call_of,
    tracer_for,
)
from miniagents_nb.runs.otel_live import LiveExport, export_live
from miniagents_nb.runs.recorded import RecordedCall, RecordedRun

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["LiveExport", "export_live", "export_run"]


def _ns(run: RecordedRun, at: float) -> int:
    """Epoch nanoseconds of a monotonic time of the recording process."""
    return epoch_ns(run.summary.started + (at - run.started_at))


def _export_call(
    tracer: Tracer, run: RecordedRun, call: RecordedCall, parent: Span | None, include_content: bool
) -> None:
    tool = tool_call_of(call.inputs[0]) if call.inputs else None
    span = start_call_span(
        tracer,
        alias=call.alias,
        description=call.description,
        call_id=call.call_id,
        tool=tool,
        parent=parent,
        start_ns=_ns(run, call.queued_at),
    )
    for request, message in zip(call.llm_requests, call.replied, strict=False):
        export_chat_span(
            tracer,
            span,
            request,
            content=(call.inputs, message.text) if include_content else None,
            start_ns=_ns(run, call.started_at or call.queued_at),
            end_ns=_ns(run, message.ended_at or message.replied_at),
        )
    for child in call.children:
        _export_call(tracer, run, child, span, include_content)
    end_call_span(
        span,
        status=call.status,
        error=call.error,
        tool=tool,
        content=(call.inputs, call.replies) if include_content else None,
        end_ns=_ns(run, call.span_end),
    )


def export_run(
    run: RecordedRun, *, tracer_provider: TracerProvider | None = None, include_content: bool = False
) -> None:
    """Emit the run's spans through `tracer_provider` (the global one by default), with their recorded times."""
    tracer = tracer_for(tracer_provider)
    for root in run.roots:
        _export_call(tracer, run, root, None, include_content)
