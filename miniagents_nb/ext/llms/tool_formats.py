"""Tools and tool exchanges in each provider's shape: the request's `tools` / `tool_choice` and the messages that
give a turn's tool calls and their results back to the model (OpenAI: an assistant message with `tool_calls`, then
one `tool` message per call; Anthropic: an assistant message of `tool_use` blocks, then a user message of
`tool_result` blocks). The ids pair each result with its call. Images a tool returns (`ImageMessage`s) go inside
Anthropic's `tool_result`; OpenAI's `tool` messages take text only, so the images follow them in one user message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from miniagents_nb.ext.llms.conversion import anthropic_image_block, openai_image_part
from miniagents_nb.ext.llms.tools import Tool
from miniagents_nb.messages import ImageMessage

__all__ = [
    "ToolCallResult",
    "anthropic_exchange_dicts",
    "anthropic_tool_request",
    "openai_exchange_dicts",
    "openai_tool_request",
]


@dataclass
class ToolCallResult:
    """One tool call of a turn and what came of it: `arguments_json` as the model sent it, `arguments` parsed
    (None when not JSON), `result` the text given back to the model, `is_error` whether that is an error."""

    id: str
    name: str
    arguments_json: str
    arguments: Any
    result: str = ""
    is_error: bool = False
    images: list[ImageMessage] = field(default_factory=list)

    def as_field(self) -> dict[str, Any]:
        """The call as a field of the final message (with `images` when the tool returned some)."""
        arguments = self.arguments if self.arguments is not None else self.arguments_json
        record = {"id": self.id, "name": self.name, "arguments": arguments, "result": self.result}
        record["is_error"] = self.is_error
        if self.images:
            record["images"] = tuple(self.images)
        return record


def openai_tool_request(tools: Sequence[Tool], tool_choice: Any, parallel_tool_calls: bool | None) -> dict[str, Any]:
    """`tools`, `tool_choice` (`"auto"`, `"required"`, `"none"` or a tool's name) and `parallel_tool_calls` of a
    chat completion request (the latter two only when given)."""
    schemas = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = tool.parameters
        if tool.strict:
            function["strict"] = True
        schemas.append({"type": "function", "function": function})
    request: dict[str, Any] = {"tools": schemas}
    if tool_choice is not None:
        named = isinstance(tool_choice, str) and tool_choice not in ("auto", "required", "none")
        request["tool_choice"] = {"type": "function", "function": {"name": tool_choice}} if named else tool_choice
    if parallel_tool_calls is not None:
        request["parallel_tool_calls"] = parallel_tool_calls
    return request


def openai_exchange_dicts(text: str, calls: Sequence[ToolCallResult]) -> list[dict[str, Any]]:
    assistant = {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments_json}}
            for call in calls
        ],
    }
    dicts: list[dict[str, Any]] = [
        assistant,
        *({"role": "tool", "tool_call_id": call.id, "content": call.result} for call in calls),
    ]
    images: list[dict[str, Any]] = []
    for call in calls:
        if call.images:
            images.append({"type": "text", "text": f"The images tool {call.name} returned (call {call.id}):"})
            images.extend(openai_image_part(image) for image in call.images)
    if images:
        dicts.append({"role": "user", "content": images})
    return dicts


def anthropic_tool_request(tools: Sequence[Tool], tool_choice: Any, parallel_tool_calls: bool | None) -> dict[str, Any]:
    """`tools` and `tool_choice` of a messages request; `tool_choice` `"required"` is Anthropic's `any`, a tool's
    name its `tool`, and `parallel_tool_calls=False` its `disable_parallel_tool_use`."""
    schemas = []
    for tool in tools:
        schema: dict[str, Any] = {"name": tool.name}
        if tool.description:
            schema["description"] = tool.description
        schema["input_schema"] = tool.parameters
        schemas.append(schema)
    request: dict[str, Any] = {"tools": schemas}
    choice: dict[str, Any] | None = None
    if isinstance(tool_choice, dict):
        choice = dict(tool_choice)
    elif tool_choice in ("auto", "none"):
        choice = {"type": tool_choice}
    elif tool_choice == "required":
        choice = {"type": "any"}
    elif isinstance(tool_choice, str):
        choice = {"type": "tool", "name": tool_choice}
    if parallel_tool_calls is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        request["tool_choice"] = choice
    return request


def anthropic_exchange_dicts(text: str, calls: Sequence[ToolCallResult]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for call in calls:
        arguments = call.arguments if isinstance(call.arguments, dict) else {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    results = []
    for call in calls:
        content: Any = call.result
        if call.images:
            content = [{"type": "text", "text": call.result}, *(anthropic_image_block(image) for image in call.images)]
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id, "content": content}
        if call.is_error:
            result["is_error"] = True
        results.append(result)
    return [{"role": "assistant", "content": blocks}, {"role": "user", "content": results}]
