"""Responses of the local protocol server (tests/llm/servers.py) that stream tool calls the way each provider does.

- `OpenAIToolStream`: a role chunk, optional text chunks, then for every call a first `delta.tool_calls` fragment
  (`index`, `id`, `type`, `function.name`, empty `arguments`) and one fragment per argument piece (`index` and
  `function.arguments` only), the finish chunk (`finish_reason: "tool_calls"`), the usage chunk and `[DONE]`.
  `interleave=True` sends the argument pieces of all calls round-robin, as a model streaming parallel calls may.
- `AnthropicToolStream`: `message_start`, an optional text block, then per call a `content_block_start` of type
  `tool_use` and `input_json_delta` pieces, `message_delta` with `stop_reason: "tool_use"`, `message_stop`.

They are enqueued like every other response (`server.enqueue(...)`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .servers import RecordedRequest

__all__ = ["AnthropicToolStream", "OpenAIToolJSON", "OpenAIToolStream", "StreamedToolCall"]


@dataclass
class StreamedToolCall:
    """A call the server streams: `pieces` joined are its arguments' JSON (not necessarily valid JSON)."""

    id: str
    name: str
    pieces: Sequence[str]


def _sse(data: dict[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


@dataclass
class OpenAIToolStream:
    calls: Sequence[StreamedToolCall]
    text: Sequence[str] = ()
    model: str = "gpt-test-2024"
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    )
    interleave: bool = False
    completion_id: str = "chatcmpl-test-tools"

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return _sse(
            {
                "id": self.completion_id,
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": self.model,
                "system_fingerprint": "fp_test",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
        )

    def write(self, writer: Any, request: RecordedRequest) -> None:
        writer.start_stream()
        writer.chunk(self._chunk({"role": "assistant", "content": None if not self.text else ""}))
        for token in self.text:
            writer.chunk(self._chunk({"content": token}))
        fragments: list[list[dict[str, Any]]] = []
        for index, call in enumerate(self.calls):
            first = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            rest = [{"index": index, "function": {"arguments": piece}} for piece in call.pieces]
            fragments.append([first, *rest])
        if self.interleave:
            ordered = [item for row in _round_robin(fragments) for item in row]
        else:
            ordered = [item for row in fragments for item in row]
        for fragment in ordered:
            writer.chunk(self._chunk({"tool_calls": [fragment]}))
        writer.chunk(self._chunk({}, finish_reason="tool_calls"))
        if ((request.json or {}).get("stream_options") or {}).get("include_usage"):
            chunk = json.loads(self._chunk({})[len("data: ") :])
            chunk["choices"], chunk["usage"] = [], self.usage
            writer.chunk(_sse(chunk))
        writer.chunk("data: [DONE]\n\n")
        writer.end_stream()


def _round_robin(rows: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for position in range(max((len(row) for row in rows), default=0)):
        out.append([row[position] for row in rows if position < len(row)])
    return out


@dataclass
class AnthropicToolStream:
    calls: Sequence[StreamedToolCall]
    text: Sequence[str] = ()
    model: str = "claude-test-1"
    input_tokens: int = 40
    output_tokens: int = 15

    def write(self, writer: Any, request: RecordedRequest) -> None:
        writer.start_stream()
        message: dict[str, Any] = {
            "id": "msg_test_tools",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
        }
        writer.chunk(_sse({"type": "message_start", "message": message}, "message_start"))
        index = 0
        if self.text:
            start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            writer.chunk(_sse(start, "content_block_start"))
            for token in self.text:
                delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
                writer.chunk(_sse(delta, "content_block_delta"))
            writer.chunk(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            index = 1
        for call in self.calls:
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            writer.chunk(
                _sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")
            )
            for piece in call.pieces:
                delta = {"type": "input_json_delta", "partial_json": piece}
                writer.chunk(
                    _sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
                )
            writer.chunk(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
            index += 1
        writer.chunk(
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": self.output_tokens},
                },
                "message_delta",
            )
        )
        writer.chunk(_sse({"type": "message_stop"}, "message_stop"))
        writer.end_stream()


@dataclass
class OpenAIToolJSON:
    """A non-streamed chat completion whose message has `tool_calls` (finish_reason `tool_calls`)."""

    calls: Sequence[StreamedToolCall]
    model: str = "gpt-test-2024"

    def write(self, writer: Any, request: RecordedRequest) -> None:
        tool_calls = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": "".join(call.pieces)}}
            for call in self.calls
        ]
        writer.send_json(
            200,
            {
                "id": "chatcmpl-test-tools-json",
                "object": "chat.completion",
                "created": 1700000000,
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "tool_calls": tool_calls},
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
            },
        )
