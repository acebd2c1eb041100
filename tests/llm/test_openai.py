"""`OpenAIAgent` with the official `openai` SDK against the local protocol server (tests/llm/servers.py).

Every test checks the exact request the SDK sent (JSON body: message order, system first, stream_options,
max_tokens, temperature, response_format) and what came back (tokens, the final message's fields).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import BaseModel

from miniagents_nb import InteractionContext, Message, MessagePromise, MiniAgents, miniagent
from miniagents_nb.ext.llms import (
    AssistantMessage,
    EmbeddingMessage,
    LLMMiniAgent,
    OpenAIAgent,
    OpenAIMessage,
    SystemMessage,
    UserMessage,
    aprepare_dicts_for_openai,
    message_to_llm_dict,
    openai_embedding_agent,
)
from miniagents_nb.ext.llms.errors import LLMError

from .servers import Embeddings, LLMTestServer, OpenAIJSON, OpenAIStream

MODEL = "gpt-4.1-mini"


async def only_promise(sequence: Any) -> MessagePromise:
    promises: list[MessagePromise] = [promise async for promise in sequence]
    assert len(promises) == 1
    return promises[0]


async def tokens_and_message(sequence: Any) -> tuple[list[str], Message]:
    promise = await only_promise(sequence)
    tokens = [token async for token in promise]
    return tokens, await promise


# --- streaming -------------------------------------------------------------------------------------------------------


async def test_tokens_stream_one_by_one(llm_server: LLMTestServer) -> None:
    """Each token reaches the consumer while the server still holds the next one back (lockstep gates)."""
    gates = [threading.Event() for _ in range(3)]
    llm_server.enqueue(OpenAIStream(["One", " two", " three", " four"], lockstep=gates))
    async with MiniAgents():
        promise = await only_promise(OpenAIAgent.trigger("count", model=MODEL))
        received = []
        async for token in promise:
            received.append(token)
            if len(received) <= len(gates):
                gate = gates[len(received) - 1]
                assert not gate.is_set()  # the server has not sent the next token yet
                gate.set()
        message = await promise
    assert received == ["One", " two", " three", " four"]
    assert all(type(token) is str for token in received)
    assert message.content == "One two three four"
    assert isinstance(message, OpenAIMessage)
    assert isinstance(message, AssistantMessage)


async def test_known_beforehand_is_readable_before_the_first_token(llm_server: LLMTestServer) -> None:
    gate = threading.Event()
    llm_server.enqueue(OpenAIStream(["Hi"], gate=gate))
    async with MiniAgents():
        sequence = OpenAIAgent.trigger("hello", model=MODEL, response_metadata={"not_for_user": True, "topic": "x"})
        promise = await only_promise(sequence)  # the reply sequence is closed before any token exists
        known = promise.known_beforehand
        assert (known.model, known.agent_alias, known.not_for_user, known.topic) == (
            MODEL,
            "OPEN_AI_AGENT",
            True,
            "x",
        )
        assert not gate.is_set()
        gate.set()
        message = await promise
    assert (message.content, message.not_for_user, message.topic) == ("Hi", True, "x")


async def test_fix4_streaming_reports_token_usage_on_the_final_message(llm_server: LLMTestServer) -> None:
    """SPEC §3 fix 4: usage is requested in streaming mode, and the usage chunk (`choices: []`) is read, not fatal."""
    llm_server.enqueue(
        OpenAIStream(["Fine", "."], usage={"prompt_tokens": 21, "completion_tokens": 2, "total_tokens": 23})
    )
    async with MiniAgents():
        tokens, message = await tokens_and_message(OpenAIAgent.trigger("How are you?", model=MODEL))
    assert llm_server.last_body["stream"] is True
    assert llm_server.last_body["stream_options"] == {"include_usage": True}
    assert tokens == ["Fine", "."]
    assert (message.usage.prompt_tokens, message.usage.completion_tokens, message.usage.total_tokens) == (21, 2, 23)
    assert message.choices[0].finish_reason == "stop"
    assert (message.id, message.model, message.response_model) == ("chatcmpl-test-stream", MODEL, "gpt-test-2024")
    assert message.system_fingerprint == "fp_test"


async def test_fix11_openai_system_goes_first(llm_server: LLMTestServer) -> None:
    """SPEC §3 fix 11: the `system=` argument is the FIRST message (upstream appends it last)."""
    async with MiniAgents():
        await OpenAIAgent.trigger(
            [SystemMessage("conversation rules"), "hi", AssistantMessage("previous answer"), UserMessage("plain")],
            model=MODEL,
            system="SYS",
        )
    assert llm_server.last_body["messages"] == [
        {"role": "system", "content": "SYS"},
        {"role": "system", "content": "conversation rules"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "previous answer"},
        {"role": "user", "content": "plain"},
    ]


async def test_fix11_aprepare_dicts_for_openai_puts_system_first() -> None:
    async with MiniAgents():
        dicts = await aprepare_dicts_for_openai(["a", AssistantMessage("b")], system="S")
        without_system = await aprepare_dicts_for_openai(["a"])
    assert dicts == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]
    assert without_system == [{"role": "user", "content": "a"}]


async def test_fork_and_trigger_arguments_reach_the_request(llm_server: LLMTestServer) -> None:
    agent = OpenAIAgent.fork(model=MODEL, temperature=0.7, max_tokens=50, system="forked system")
    async with MiniAgents():
        await agent.trigger("q", temperature=0.2, top_p=0.9, stop=["END"], seed=7, logit_bias={"50256": -100})
    body = llm_server.last_body
    assert body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "forked system"}, {"role": "user", "content": "q"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 50,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "logit_bias": {"50256": -100},
    }
    headers = llm_server.requests[-1].headers
    assert headers["authorization"] == "Bearer sk-test-dummy-openai-key"


async def test_stream_options_can_be_turned_off_for_servers_that_reject_them(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(OpenAIStream(["ok"], include_usage=False))
    async with MiniAgents():
        tokens, message = await tokens_and_message(OpenAIAgent.trigger("q", model=MODEL, stream_options=None))
    assert "stream_options" not in llm_server.last_body
    assert tokens == ["ok"]
    assert message.get("usage") is None


async def test_non_streamed_reply_is_one_token_with_every_field(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(OpenAIJSON("All in one go.", finish_reason="length"))
    async with MiniAgents():
        tokens, message = await tokens_and_message(OpenAIAgent.trigger("q", model=MODEL, stream=False))
    assert "stream" not in llm_server.last_body
    assert "stream_options" not in llm_server.last_body
    assert tokens == ["All in one go."]
    assert message.content == "All in one go."
    assert message.choices[0].finish_reason == "length"
    assert message.usage.total_tokens == 14
    assert (message.id, message.object, message.created, message.role) == (
        "chatcmpl-test-json",
        "chat.completion",
        1700000000,
        "assistant",
    )


@pytest.mark.parametrize("stream_by_default", [True, False])
async def test_streaming_default_comes_from_the_context(llm_server: LLMTestServer, stream_by_default: bool) -> None:
    async with MiniAgents(stream_llm_tokens_by_default=stream_by_default):
        message = (await OpenAIAgent.trigger("q", model=MODEL))[0]
    assert bool(llm_server.last_body.get("stream")) is stream_by_default
    assert message.content == "Hello from the test server."


async def test_every_chunk_field_lands_on_the_final_message(llm_server: LLMTestServer) -> None:
    """Tool-call fragments are joined by index, logprobs extended, streamed extra strings concatenated, unknown
    top-level fields kept, usage read from the choice-less chunk."""

    def chunk(choice: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 5, "model": "srv-model", **extra}
        base["choices"] = [] if choice is None else [{"index": 0, "logprobs": None, "finish_reason": None, **choice}]
        return base

    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
    llm_server.enqueue(
        OpenAIStream(
            [],
            raw_chunks=[
                chunk({"delta": {"role": "assistant", "content": ""}}, x_groq={"id": "req_1"}),
                chunk({"delta": {"content": "Let me", "reasoning_content": "think"}}),
                chunk({"delta": {"content": " check.", "reasoning_content": "ing"}}),
                chunk(
                    {
                        "delta": {"content": "!"},
                        "logprobs": {"content": [{"token": "!", "logprob": -0.1, "bytes": [33], "top_logprobs": []}]},
                    }
                ),
                chunk({"delta": {"tool_calls": [call]}}),
                chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]}}),
                chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}}),
                chunk({"delta": {}, "finish_reason": "tool_calls"}),
                chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
            ],
        )
    )
    async with MiniAgents():
        tokens, message = await tokens_and_message(OpenAIAgent.trigger("q", model=MODEL))
    assert tokens == ["Let me", " check.", "!"]
    choice = message.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.reasoning_content == "thinking"
    (tool_call,) = choice.message.tool_calls
    assert (tool_call.id, tool_call.function.name, tool_call.function.arguments) == ("call_1", "lookup", '{"q": "x"}')
    assert [item.token for item in choice.logprobs.content] == ["!"]
    assert message.x_groq.id == "req_1"
    assert (message.usage.total_tokens, message.id, message.response_model) == (7, "c1", "srv-model")


# --- messages become LLM dicts ---------------------------------------------------------------------------------------


async def test_text_alias_reaches_the_llm_as_text_not_json(llm_server: LLMTestServer) -> None:
    """`Message(text=..., role="user")` (seed v2) is sent as its text; so is any message with content."""

    class CustomMessage(Message):
        custom_field: str

    async with MiniAgents():
        await OpenAIAgent.trigger(
            [
                Message(text="How are you today?", role="user"),
                CustomMessage(text="custom", custom_field="ignored"),
                {"content": "from a dict", "role": "assistant"},
            ],
            model=MODEL,
        )
    assert llm_server.last_body["messages"] == [
        {"role": "user", "content": "How are you today?"},
        {"role": "user", "content": "custom"},
        {"role": "assistant", "content": "from a dict"},
    ]


def test_message_to_llm_dict() -> None:
    assert message_to_llm_dict(Message(text="t", role="system")) == {"role": "system", "content": "t"}
    assert message_to_llm_dict(UserMessage("u")) == {"role": "user", "content": "u"}
    assert message_to_llm_dict(AssistantMessage("a")) == {"role": "assistant", "content": "a"}
    from miniagents_nb import TextMessage

    templated = TextMessage(content_template="Hi {name}", name="Ann")
    assert message_to_llm_dict(templated, default_role="assistant") == {"role": "assistant", "content": "Hi Ann"}
    no_text = message_to_llm_dict(Message(number=1))
    assert no_text["role"] == "user"
    assert '"number":1' in no_text["content"]


# --- structured output -----------------------------------------------------------------------------------------------


class WebSearch(BaseModel):
    rationale: str
    web_search_query: str


class WebSearchesToBeDone(BaseModel):
    web_searches: tuple[WebSearch, ...]


STRUCTURED_JSON = '{"web_searches": [{"rationale": "need facts", "web_search_query": "miniagents"}]}'


@pytest.mark.parametrize("stream", [True, False])
async def test_structured_output_gives_parsed_and_parsed_object(llm_server: LLMTestServer, stream: bool) -> None:
    if stream:
        llm_server.enqueue(OpenAIStream([STRUCTURED_JSON[:20], STRUCTURED_JSON[20:]]))
    else:
        llm_server.enqueue(OpenAIJSON(STRUCTURED_JSON))
    async with MiniAgents():
        tokens, message = await tokens_and_message(
            OpenAIAgent.trigger("research", model=MODEL, stream=stream, response_format=WebSearchesToBeDone)
        )
    body = llm_server.last_body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "WebSearchesToBeDone"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert "".join(tokens) == STRUCTURED_JSON
    assert message.parsed.web_searches[0].web_search_query == "miniagents"  # frozen data, persisted with the message
    assert isinstance(message.parsed_object, WebSearchesToBeDone)  # the model instance itself
    assert message.parsed_object.web_searches[0].rationale == "need facts"
    assert message.choices[0].finish_reason == "stop"


async def test_response_format_as_a_dict_is_passed_through(llm_server: LLMTestServer) -> None:
    agent = OpenAIAgent.fork(model=MODEL, response_format={"type": "json_object"})
    async with MiniAgents():
        message = (await agent.trigger("q"))[0]
    assert llm_server.last_body["response_format"] == {"type": "json_object"}
    assert message.get("parsed") is None
    assert message.parsed_object is None


# --- OpenAI-compatible servers and injected clients ------------------------------------------------------------------


async def test_openai_compatible_server_via_base_url_and_api_key(
    llm_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groq / Mistral / vLLM / Ollama style: `base_url` + `api_key` (or `api_key_env`), no OpenAI settings."""
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-env")
    groq = OpenAIAgent.fork(model="llama-3.3-70b", base_url=llm_server.openai_base_url, api_key="gsk-explicit")
    from_env = OpenAIAgent.fork(model="m", base_url=llm_server.openai_base_url, api_key_env="GROQ_API_KEY")
    local = OpenAIAgent.fork(model="qwen", base_url=llm_server.openai_base_url)  # vLLM / Ollama: no key at all
    async with MiniAgents():
        for agent in (groq, from_env, local):
            assert (await agent.trigger("q"))[0].content == "Hello from the test server."
    auth = [request.headers["authorization"] for request in llm_server.requests]
    assert auth == ["Bearer gsk-explicit", "Bearer gsk-from-env", "Bearer not-needed"]
    assert [body["model"] for body in llm_server.bodies] == ["llama-3.3-70b", "m", "qwen"]


async def test_injected_client_through_non_freezable_kwargs_and_as_a_plain_argument(llm_server: LLMTestServer) -> None:
    import openai

    client = openai.AsyncOpenAI(
        api_key="sk-injected", base_url=llm_server.openai_base_url, default_headers={"x-test-client": "injected"}
    )
    upstream_way = OpenAIAgent.fork(model=MODEL, non_freezable_kwargs={"async_client": client})
    simpler_way = OpenAIAgent.fork(model=MODEL, async_client=client)
    assert isinstance(simpler_way, LLMMiniAgent)
    try:
        async with MiniAgents():
            await upstream_way.trigger("a")
            await simpler_way.trigger("b")
            await OpenAIAgent.trigger("c", model=MODEL, async_client=client)  # per call
        assert not client.is_closed()  # an injected client belongs to its owner
    finally:
        await client.close()
    assert [request.headers["x-test-client"] for request in llm_server.requests] == ["injected"] * 3
    assert [request.headers["authorization"] for request in llm_server.requests] == ["Bearer sk-injected"] * 3


async def test_an_api_key_is_never_frozen_persisted_or_logged(
    llm_server: LLMTestServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    persisted: list[Message] = []

    async def handler(messages: list[Message]) -> None:
        persisted.extend(messages)

    agent = OpenAIAgent.fork(model=MODEL, api_key="sk-secret-fork")
    assert "api_key" not in agent._frozen_kwargs
    async with MiniAgents(on_persist_messages=handler, llm_logger_agent=True):
        await agent.trigger("a")
        await OpenAIAgent.trigger("b", model=MODEL, api_key="sk-secret-call")
        await MiniAgents.get_current().aflush_tasks()
    auth = [request.headers["authorization"] for request in llm_server.requests]
    assert auth == ["Bearer sk-secret-fork", "Bearer sk-secret-call"]
    assert persisted
    everything = "".join(message.serialized for message in persisted)
    everything += "".join(path.read_text() for path in (tmp_path / "llm_logs").glob("*.md"))
    assert "sk-secret" not in everything


async def test_a_later_frozen_value_overrides_an_earlier_live_one(llm_server: LLMTestServer) -> None:
    first = OpenAIAgent.fork(model=MODEL, response_format=WebSearchesToBeDone)
    second = first.fork(response_format={"type": "json_object"})
    async with MiniAgents():
        await second.trigger("q")
    assert llm_server.last_body["response_format"] == {"type": "json_object"}


# --- arguments checked --------------------------------------------------------------------------------------------


async def test_a_missing_model_is_a_clear_error_at_the_message() -> None:
    async with MiniAgents():
        promise = await only_promise(OpenAIAgent.trigger("q"))
        with pytest.raises(ValueError, match=r"needs a model: fork the agent with model="):
            await promise


async def test_n_other_than_one_is_refused(llm_server: LLMTestServer) -> None:
    async with MiniAgents():
        with pytest.raises(ValueError, match=r"n must be 1"):
            await OpenAIAgent.trigger("q", model=MODEL, n=2)
    assert llm_server.requests == []


async def test_input_failures_reach_the_message_unchanged(llm_server: LLMTestServer) -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        raise RuntimeError("upstream agent broke")

    async with MiniAgents():
        with pytest.raises(RuntimeError, match="upstream agent broke") as error_info:
            await OpenAIAgent.trigger(failing.trigger(), model=MODEL)
    assert not isinstance(error_info.value, LLMError)
    assert llm_server.requests == []


# --- embeddings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_mode", [False, True])
async def test_openai_embedding_agent(llm_server: LLMTestServer, batch_mode: bool) -> None:
    llm_server.enqueue(Embeddings(vectors=[[0.1, 0.2], [0.3, 0.4]]))
    async with MiniAgents():
        replies = await openai_embedding_agent.trigger(
            ["first", "second"], model="text-embedding-3-small", batch_mode=batch_mode, response_metadata={"k": 1}
        )
    body = llm_server.last_body
    assert body["model"] == "text-embedding-3-small"
    if batch_mode:
        assert body["input"] == ["first", "second"]
        assert [(reply.content, reply.embedding) for reply in replies] == [
            ("first", (0.1, 0.2)),
            ("second", (0.3, 0.4)),
        ]
    else:
        assert body["input"] == ["first\n\nsecond"]
        assert [(reply.content, reply.embedding) for reply in replies] == [("first\n\nsecond", (0.1, 0.2))]
    assert all(isinstance(reply, EmbeddingMessage) and reply.k == 1 for reply in replies)
    assert replies[0].usage.total_tokens == 3 * len(body["input"])
