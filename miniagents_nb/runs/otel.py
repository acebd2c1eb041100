"""A recorded run as OpenTelemetry spans, following the GenAI semantic conventions (`pip install
"miniagents-nb[otel]"`; this module is the only one that imports `opentelemetry`, and only when imported itself).

Each call becomes an `invoke_agent <alias>` span (`gen_ai.operation.name`, `gen_ai.agent.name`,
`gen_ai.agent.description`), a child of its parent call's span, from when it was queued to when it and everything it
replied was done; each LLM request a call's reply describes becomes a `chat <model>` child span
(`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens` /
`output_tokens`, `gen_ai.response.finish_reasons`, the request parameters as `gen_ai.request.*`). Message content
is exported only when asked for (`include_content=True`: `gen_ai.input.messages` / `gen_ai.output.messages`, as
JSON). A failed call's span has an error status and `error.type`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from miniagents_nb.errors import RecordedError
from miniagents_nb.runs.recorded import LLMRequest, RecordedCall, RecordedRun

__all__ = ["export_run"]

_PARAMETERS = {"temperature", "max_tokens", "top_p", "top_k", "frequency_penalty", "presence_penalty", "seed"}


def _ns(run: RecordedRun, at: float) -> int:
    """Epoch nanoseconds of a monotonic time of the recording process."""
    return int((run.summary.started + (at - run.started_at)) * 1e9)


def _texts(entries: Iterable[Any]) -> str:
    return json.dumps([str(entry) for entry in entries], ensure_ascii=False)


def _chat_attributes(request: LLMRequest) -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat"}
    if request.provider:
        attributes["gen_ai.provider.name"] = request.provider
    if request.model:
        attributes["gen_ai.request.model"] = request.model
    attributes["gen_ai.response.model"] = request.response_model or request.model or ""
    usage = request.usage if isinstance(request.usage, dict) else {}
    input_tokens = usage.get("input_tokens", usage.get("prompt_tokens"))
    output_tokens = usage.get("output_tokens", usage.get("completion_tokens"))
    if isinstance(input_tokens, int):
        attributes["gen_ai.usage.input_tokens"] = input_tokens
    if isinstance(output_tokens, int):
        attributes["gen_ai.usage.output_tokens"] = output_tokens
    if request.stop_reason:
        attributes["gen_ai.response.finish_reasons"] = [request.stop_reason]
    for name, value in request.parameters.items():
        if name in _PARAMETERS and isinstance(value, (int, float, str, bool)):
            attributes[f"gen_ai.request.{name}"] = value
    return attributes


def _export_call(
    tracer: Tracer, run: RecordedRun, call: RecordedCall, parent: Span | None, include_content: bool
) -> None:
    context = trace.set_span_in_context(parent) if parent is not None else None
    attributes: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": call.alias}
    if call.description:
        attributes["gen_ai.agent.description"] = call.description
    attributes["miniagents_nb.call_id"] = call.call_id
    attributes["miniagents_nb.status"] = call.status.value
    if include_content:
        attributes["gen_ai.input.messages"] = _texts(call.inputs)
        attributes["gen_ai.output.messages"] = _texts(call.replies)
    span = tracer.start_span(
        f"invoke_agent {call.alias}",
        context=context,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        start_time=_ns(run, call.queued_at),
    )
    if isinstance(call.error, RecordedError):
        span.set_attribute("error.type", call.error.type_name)
        span.set_status(Status(StatusCode.ERROR, str(call.error)))
    chat_context = trace.set_span_in_context(span)
    for request, message in zip(call.llm_requests, call.replied, strict=False):
        chat = tracer.start_span(
            f"chat {request.model}" if request.model else "chat",
            context=chat_context,
            kind=SpanKind.CLIENT,
            attributes=_chat_attributes(request),
            start_time=_ns(run, call.started_at or call.queued_at),
        )
        if include_content:
            chat.set_attribute("gen_ai.input.messages", _texts(call.inputs))
            chat.set_attribute("gen_ai.output.messages", _texts([message.text]))
        chat.end(end_time=_ns(run, message.ended_at or message.replied_at))
    for child in call.children:
        _export_call(tracer, run, child, span, include_content)
    span.end(end_time=_ns(run, call.span_end))


def export_run(
    run: RecordedRun, *, tracer_provider: TracerProvider | None = None, include_content: bool = False
) -> None:
    """Emit the run's spans through `tracer_provider` (the global one by default), with their recorded times."""
    tracer = trace.get_tracer("miniagents_nb.runs", tracer_provider=tracer_provider)
    for root in run.roots:
        _export_call(tracer, run, root, None, include_content)
