"""A local HTTP server that speaks the OpenAI and Anthropic wire protocols, for tests with the official SDKs.

It runs in a thread (stdlib `ThreadingHTTPServer`, 127.0.0.1, a random port), records every request (path, headers,
JSON body) and answers from a script of responses queued by the test; with an empty script it answers the protocol
of the request path with `reply_tokens`. Responses:

- OpenAI chat completions: JSON, or SSE chunks ending with the usage chunk (`choices: []`, when the request asked
  for `stream_options.include_usage`) and `data: [DONE]`;
- Anthropic messages: JSON, or the `message_start ... message_stop` event stream;
- OpenAI embeddings: JSON;
- faults: an HTTP error with headers (401, 429 + retry-after, 500), a stall (the client's timeout fires), a stream cut
  mid-way (the chunked body ends without its terminating chunk), a malformed chunk.

Streams can be gated by `threading.Event`s so a test decides *when* a token leaves the server: that is how ordering
is checked (known_beforehand before the first token, one token at a time) without sleeps. Every wait is bounded so a
failing test never hangs the server thread.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "AnthropicJSON",
    "AnthropicStream",
    "Embeddings",
    "HTTPError",
    "LLMTestServer",
    "OpenAIJSON",
    "OpenAIStream",
    "RecordedRequest",
    "Stall",
]

GATE_TIMEOUT = 10.0
"""Longest time (seconds) the server waits for a gate; a test that forgets to open one fails instead of hanging."""


@dataclass
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


class _Writer:
    """Writes a response through the handler: chunked for streams (so a stream can be cut), sized for JSON."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.handler = handler

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.handler.send_response(status)
        self.handler.send_header("Content-Type", "application/json")
        self.handler.send_header("Content-Length", str(len(data)))
        self.handler.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def start_stream(self) -> None:
        self.handler.send_response(200)
        self.handler.send_header("Content-Type", "text/event-stream")
        self.handler.send_header("Transfer-Encoding", "chunked")
        self.handler.send_header("Connection", "close")
        self.handler.end_headers()
        self.handler.wfile.flush()

    def chunk(self, text: str) -> None:
        data = text.encode()
        self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.handler.wfile.flush()

    def end_stream(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()


def _wait(gate: threading.Event | None) -> None:
    if gate is not None and not gate.wait(GATE_TIMEOUT):
        raise TimeoutError("a test server gate was never opened")


@dataclass
class HTTPError:
    """An error response with a provider-shaped JSON body."""

    status: int
    message: str = "something went wrong"
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = "api_error"

    def write(self, writer: _Writer, request: RecordedRequest) -> None:
        if request.path.endswith("/messages"):
            body: dict[str, Any] = {"type": "error", "error": {"type": self.error_type, "message": self.message}}
        else:
            body = {"error": {"message": self.message, "type": self.error_type, "param": None, "code": None}}
        writer.send_json(self.status, body, self.headers)


@dataclass
class Stall:
    """Say nothing until `release` is set (or GATE_TIMEOUT passes): the client's timeout fires first."""

    release: threading.Event = field(default_factory=threading.Event)

    def write(self, writer: _Writer, request: RecordedRequest) -> None:
        self.release.wait(GATE_TIMEOUT)


@dataclass
class OpenAIJSON:
    """A non-streamed chat completion."""

    content: str
    model: str = "gpt-test-2024"
    finish_reason: str = "stop"
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    )
    completion_id: str = "chatcmpl-test-json"

    def write(self, writer: _Writer, request: RecordedRequest) -> None:
        writer.send_json(
            200,
            {
                "id": self.completion_id,
                "object": "chat.completion",
                "created": 1700000000,
                "model": self.model,
                "system_fingerprint": "fp_test",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": self.finish_reason,
                    }
                ],
                "usage": self.usage,
            },
        )


@dataclass
class OpenAIStream:
    """A streamed chat completion: a role chunk, one chunk per token, a finish chunk, the usage chunk, [DONE].

    `cut_after=n` ends the body abruptly after n token chunks; `malformed_after=n` sends a chunk that is not JSON
    after n token chunks; `gate` holds the first token back; `lockstep[i]` holds token i back (i >= 1).
    `include_usage=None` sends the usage chunk exactly when the request asked for it. `send_finish=False` leaves out
    the finish_reason chunk; `raw_chunks` (dicts) are sent verbatim instead of the token chunks.
    """

    tokens: Sequence[str]
    model: str = "gpt-test-2024"
    finish_reason: str = "stop"
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    )
    include_usage: bool | None = None
    send_done: bool = True
    send_finish: bool = True
    raw_chunks: Sequence[dict[str, Any]] = ()
    cut_after: int | None = None
    malformed_after: int | None = None
    gate: threading.Event | None = None
    lockstep: Sequence[threading.Event] = ()
    completion_id: str = "chatcmpl-test-stream"

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        data = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": self.model,
            "system_fingerprint": "fp_test",
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(data)}\n\n"

    def write(self, writer: _Writer, request: RecordedRequest) -> None:
        include_usage = self.include_usage
        if include_usage is None:
            include_usage = bool(((request.json or {}).get("stream_options") or {}).get("include_usage"))
        usage_field = {"usage": None} if include_usage else {}
        writer.start_stream()
        if self.raw_chunks:
            for raw in self.raw_chunks:
                writer.chunk(f"data: {json.dumps(raw)}\n\n")
            writer.chunk("data: [DONE]\n\n")
            writer.end_stream()
            return
        writer.chunk(
            self._chunk(
                [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}],
                **usage_field,
            )
        )
        _wait(self.gate)
        for number, token in enumerate(self.tokens):
            if number == self.cut_after:
                return  # no terminating chunk: the client sees an incomplete body
            if number == self.malformed_after:
                writer.chunk('data: {"id": "chatcmpl-test-stream", "choices": [{"delta": {"content": "oops"\n\n')
                writer.end_stream()
                return
            if number and number - 1 < len(self.lockstep):
                _wait(self.lockstep[number - 1])
            writer.chunk(
                self._chunk(
                    [{"index": 0, "delta": {"content": token}, "logprobs": None, "finish_reason": None}],
                    **usage_field,
                )
            )
        if self.send_finish:
            writer.chunk(
                self._chunk(
                    [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": self.finish_reason}], **usage_field
                )
            )
        if include_usage:
            writer.chunk(self._chunk([], usage=self.usage))
        if self.send_done:
            writer.chunk("data: [DONE]\n\n")
        writer.end_stream()


@dataclass
class AnthropicJSON:
    """A non-streamed Anthropic message (`tool_input` makes it a tool_use answer)."""

    text: str = ""
    model: str = "claude-test-1"
    stop_reason: str = "end_turn"
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 11, "output_tokens": 6})
    tool_input: dict[str, Any] | None = None
    tool_name: str = ""

    def write(self, writer: _Writer, request: RecordedRequest) -> None:
        if self.tool_input is not None:
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": "toolu_test", "name": self.tool_name, "input": self.tool_input}
            ]
        else:
            content = [{"type": "text", "text": self.text}]
        writer.send_json(
            200,
            {
                "id": "msg_test_json",
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": content,
                "stop_reason": self.stop_reason,
                "stop_sequence": None,
                "usage": self.usage,
            },
        )


@dataclass
class AnthropicStream:
    """An Anthropic event stream: message_start, a content block with one delta per token, message_delta, stop.

    With `tool_name`, the block is a tool_use block and the tokens are `input_json_delta` pieces.
    `cut_after` / `malformed_after` / `gate` work as in `OpenAIStream`; `send_stop=False` leaves out message_stop.
    """

    tokens: Sequence[str]
    model: str = "claude-test-1"
    stop_reason: str = "end_turn"
    input_tokens: int = 11
    output_tokens: int = 6
    tool_name: str = ""
    send_stop: bool = True
    cut_after: int | None = None
    malformed_after: int | None = None
    gate: threading.Event | None = None

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n"

    def write(self, writer: _Writer, request: RecordedRequest) -> None:
        writer.start_stream()
        message: dict[str, Any] = {
            "id": "msg_test_stream",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
        }
        writer.chunk(self._event("message_start", {"type": "message_start", "message": message}))
        if self.tool_name:
            block: dict[str, Any] = {"type": "tool_use", "id": "toolu_test", "name": self.tool_name, "input": {}}
        else:
            block = {"type": "text", "text": ""}
        writer.chunk(
            self._event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
        )
        writer.chunk(self._event("ping", {"type": "ping"}))
        _wait(self.gate)
        for number, token in enumerate(self.tokens):
            if number == self.cut_after:
                return
            if number == self.malformed_after:
                writer.chunk(
                    'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": \n\n'
                )
                writer.end_stream()
                return
            if self.tool_name:
                delta = {"type": "input_json_delta", "partial_json": token}
            else:
                delta = {"type": "text_delta", "text": token}
            writer.chunk(
                self._event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
        writer.chunk(self._event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        writer.chunk(
            self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": self.output_tokens},
                },
            )
        )
        if self.send_stop:
            writer.chunk(self._event("message_stop", {"type": "message_stop"}))
        writer.end_stream()


@dataclass
class Embeddings:
    """An OpenAI embeddings response: one vector per input (`vectors[i]`, or a deterministic one)."""

    vectors: Sequence[Sequence[float]] = ()
    model: str = "text-embedding-test"

    def write(self, writer: _Writer, request: RecordedRequest) -> None:
        inputs = request.json["input"]
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        data = []
        for index, text in enumerate(inputs):
            vector = list(self.vectors[index]) if index < len(self.vectors) else [float(len(text)), 0.5, -1.0]
            data.append({"object": "embedding", "index": index, "embedding": vector})
        writer.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": self.model,
                "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)},
            },
        )


class LLMTestServer:
    """The server: `enqueue(...)` responses, run the SDK against `openai_base_url` / `anthropic_base_url`,
    then check `requests`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.reply_tokens: list[str] = ["Hello", " from", " the", " test", " server."]
        self._script: deque[Any] = deque()
        self._lock = threading.Lock()
        self._stalls: list[Stall] = []
        self.received = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output clean."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                request = RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(request)
                    response = server._script.popleft() if server._script else server._default(request)
                if isinstance(response, Stall):
                    server._stalls.append(response)
                server.received.set()
                self.close_connection = True
                try:
                    response.write(_Writer(self), request)
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass  # the client gave up (timeout test) or the test is over

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="llm-test-server", daemon=True
        )

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> LLMTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        for stall in self._stalls:
            stall.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # --- scripting -------------------------------------------------------------------------------------------------

    def enqueue(self, *responses: Any) -> None:
        """Answer the next requests with these responses, in order."""
        with self._lock:
            self._script.extend(responses)

    def _default(self, request: RecordedRequest) -> Any:
        if request.path.endswith("/embeddings"):
            return Embeddings()
        streamed = bool(isinstance(request.json, dict) and request.json.get("stream"))
        if request.path.endswith("/messages"):
            return AnthropicStream(self.reply_tokens) if streamed else AnthropicJSON("".join(self.reply_tokens))
        return OpenAIStream(self.reply_tokens) if streamed else OpenAIJSON("".join(self.reply_tokens))

    # --- inspection ------------------------------------------------------------------------------------------------

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies received so far."""
        with self._lock:
            return [request.json for request in self.requests]

    @property
    def last_body(self) -> Any:
        bodies = self.bodies
        assert bodies, "the test server received no request"
        return bodies[-1]
