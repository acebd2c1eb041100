"""The spans of the OpenTelemetry export and their GenAI attributes, in one place for the export of a recorded run
(`miniagents_nb.runs.otel`) and the live one (`miniagents_nb.runs.otel_live`), so both give the same spans.

A call is an `invoke_agent <alias>` span, or an `execute_tool <tool name>` span when it executes a model's tool
call; an LLM request a call's reply describes is a `chat <model>` span under it. A tool call is recognised by what
the observation API shows of it, with no LLM module imported: the tool loop makes each tool execution an agent call
whose first input is the model's tool call message, with `tool_name` and `tool_call_id` fields (known before its
arguments stream in; the notebook views read the same two fields). The attributes that depend on how a call ended
(status, error, content) are set when its span ends.

This module and the two that use it are the only ones that import `opentelemetry` (`pip install
"miniagents-nb[otel]"`), and only when imported themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

try:
    from opentelemetry import trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
except ImportError as missing:
    raise ImportError(
        f"Exporting runs as OpenTelemetry spans needs `{missing.name or 'opentelemetry'}`: install it with "
        '`pip install "miniagents-nb[otel]"`.'
    ) from missing

from miniagents_nb.agents import AgentCallStatus
from miniagents_nb.errors import RecordedError
from miniagents_nb.messages import Message
from miniagents_nb.runs.encoding import arguments_json, error_columns, llm_columns
from miniagents_nb.runs.recorded import LLMRequest

__all__ = [
    "ToolCallFacts",
    "end_call_span",
    "epoch_ns",
    "export_chat_span",
    "live_llm_request",
    "start_call_span",
    "tool_call_of",
    "tracer_for",
]

_PARAMETERS = {"temperature", "max_tokens", "top_p", "top_k", "frequency_penalty", "presence_penalty", "seed"}


def tracer_for(tracer_provider: TracerProvider | None) -> Tracer:
    """The tracer both exports emit through (`tracer_provider`, or the global one)."""
    return trace.get_tracer("miniagents_nb.runs", tracer_provider=tracer_provider)


def epoch_ns(epoch_seconds: float) -> int:
    """Nanoseconds since the epoch, as OpenTelemetry takes times."""
    return int(epoch_seconds * 1e9)


@dataclass(frozen=True)
class ToolCallFacts:
    """What a tool execution's span says of the model's tool call: the tool's name and the call's id."""

    name: str
    call_id: str | None


def tool_call_of(first_input: Any) -> ToolCallFacts | None:
    """The tool call a call executes, from its first input (a message, or a message promise whose fields are known
    beforehand), or None when the call is no tool execution (see the module docstring)."""
    fields_of = getattr(first_input, "known_beforehand", first_input)
    as_kwargs = getattr(fields_of, "as_kwargs", None)
    if as_kwargs is None:
        return None
    fields: Mapping[str, Any] = as_kwargs()
    name = fields.get("tool_name")
    if not isinstance(name, str) or not name or "tool_call_id" not in fields:
        return None
    call_id = fields["tool_call_id"]
    return ToolCallFacts(name, None if call_id is None else str(call_id))


def _texts(entries: Iterable[Any]) -> str:
    return json.dumps([str(entry) for entry in entries], ensure_ascii=False)


def start_call_span(
    tracer: Tracer,
    *,
    alias: str,
    description: str | None,
    call_id: int | None,
    tool: ToolCallFacts | None,
    parent: Span | None,
    start_ns: int,
) -> Span:
    """The span of a call, started at `start_ns` under its caller's span (`parent`)."""
    attributes: dict[str, Any]
    if tool is not None:
        name = f"execute_tool {tool.name}"
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool.name}
        attributes["gen_ai.tool.type"] = "function"
        if tool.call_id:
            attributes["gen_ai.tool.call.id"] = tool.call_id
        if description:
            attributes["gen_ai.tool.description"] = description
    else:
        name = f"invoke_agent {alias}"
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": alias}
        if description:
            attributes["gen_ai.agent.description"] = description
    if call_id is not None:
        attributes["miniagents_nb.call_id"] = call_id
    return tracer.start_span(
        name,
        context=trace.set_span_in_context(parent) if parent is not None else None,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        start_time=start_ns,
    )


def end_call_span(
    span: Span,
    *,
    status: AgentCallStatus,
    error: BaseException | None,
    tool: ToolCallFacts | None,
    content: tuple[Iterable[Any], Iterable[Any]] | None,
    end_ns: int,
) -> None:
    """Say how the call ended (status; for a failure an error status and `error.type`; the messages when `content`
    is given as `(inputs, replies)`: entries are messages or failures) and end its span at `end_ns`."""
    span.set_attribute("miniagents_nb.status", status.value)
    if content is not None:
        inputs, replies = (list(entries) for entries in content)
        if tool is not None:
            span.set_attribute("gen_ai.tool.call.arguments", str(inputs[0]) if inputs else "")
            span.set_attribute("gen_ai.tool.call.result", "\n\n".join(str(reply) for reply in replies))
        else:
            span.set_attribute("gen_ai.input.messages", _texts(inputs))
            span.set_attribute("gen_ai.output.messages", _texts(replies))
    if error is not None:
        recorded = error if isinstance(error, RecordedError) else RecordedError(*error_columns(error))
        span.set_attribute("error.type", recorded.type_name)
        span.set_status(Status(StatusCode.ERROR, str(recorded)))
    span.end(end_time=end_ns)


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


def export_chat_span(
    tracer: Tracer,
    parent: Span,
    request: LLMRequest,
    *,
    content: tuple[Iterable[Any], str] | None,
    start_ns: int,
    end_ns: int,
) -> None:
    """The `chat <model>` span of one LLM request under its call's span, with the request's messages when `content`
    is given as `(the call's inputs, the reply's text)`."""
    chat = tracer.start_span(
        f"chat {request.model}" if request.model else "chat",
        context=trace.set_span_in_context(parent),
        kind=SpanKind.CLIENT,
        attributes=_chat_attributes(request),
        start_time=start_ns,
    )
    if content is not None:
        inputs, output = content
        chat.set_attribute("gen_ai.input.messages", _texts(inputs))
        chat.set_attribute("gen_ai.output.messages", _texts([output]))
    chat.end(end_time=end_ns)


def live_llm_request(message: Message, arguments: Mapping[str, Any]) -> LLMRequest | None:
    """The LLM request a live reply describes (None when it is no LLM's reply), read as the run store reads it
    (`llm_columns`, with the call's arguments as its parameters), so both exports see the same request."""
    columns = llm_columns(message, arguments_json(arguments))
    if columns is None:
        return None
    provider, model, response_model, parameters, usage, stop_reason, request_key, _ = columns
    return LLMRequest(
        provider=provider,
        model=model,
        response_model=response_model,
        parameters=json.loads(parameters) if parameters else {},
        usage=json.loads(usage) if usage else None,
        stop_reason=stop_reason,
        time_to_first_token=None,
        request_key=request_key,
    )
