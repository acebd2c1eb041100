"""LLM adapters: tinysmith's names and parameters on top of our LLM agents, with cumulative token accounting."""

from __future__ import annotations

import re
from typing import Any

import pytest

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.errors import RunningEventLoopError
from miniagents_nb.ext.llms import FakeLLMAgent, LLMBadRequestError, OpenAIAgent
from miniagents_nb.orchestration import (
    AssistantMessage,
    CustomAPIAdapter,
    FakeLLMAdapter,
    GroqAPIAdapter,
    HumanInputAdapter,
    LLMAdapter,
    LLMAdapterError,
    MaxContextError,
    MiniAgentLLMAdapter,
    MistralAPIAdapter,
    OpenAiAPIAdapter,
    SystemMessage,
    UserMessage,
)
from miniagents_nb.orchestration.adapters import is_context_length_error, usage_of

from .helpers import ScriptedLLM

VENDOR_ADAPTERS = [OpenAiAPIAdapter, GroqAPIAdapter, MistralAPIAdapter]


@pytest.mark.parametrize("adapter_class", VENDOR_ADAPTERS)
def test_vendor_adapters_take_tinysmiths_parameters(adapter_class: type[Any]) -> None:
    usage: dict[str, int] = {}
    adapter = adapter_class("some-model", 0.5, 0.9, usage, "key", 64)
    assert (adapter.model, adapter.temperature, adapter.top_p, adapter.max_tokens) == ("some-model", 0.5, 0.9, 64)
    assert adapter.token_usage is usage is adapter.usage
    assert "key" not in repr(adapter)


def test_custom_adapter_takes_base_url_first_and_needs_no_key() -> None:
    adapter = CustomAPIAdapter("http://localhost:8000/v1", "NousResearch/Meta-Llama-3-8B-Instruct", 0.5, 1, {})
    assert adapter.base_url == "http://localhost:8000/v1"
    with pytest.raises(LLMAdapterError, match="base_url"):
        CustomAPIAdapter("", "m", 0, 1, {})


def test_seed_custom_adapter_keywords() -> None:
    """The seed's self-hosted example, keyword for keyword."""
    llm = CustomAPIAdapter(
        model="NousResearch/Meta-Llama-3-8B-Instruct",
        temperature=0.5,
        top_p=1,
        token_usage={},
        api_key="token-abc123",
        base_url="http://localhost:8000/v1",
    )
    assert llm.model == "NousResearch/Meta-Llama-3-8B-Instruct"


def test_vendor_adapters_build_an_openai_agent_for_their_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is called: only the agent the adapter would trigger is inspected. The key stays unfrozen."""
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "openai")
    groq = GroqAPIAdapter("llama3-8b-8192", 1, 1, {}).resolve_llm_agent()
    assert groq.wrapped_func_or_class is OpenAIAgent.wrapped_func_or_class
    assert groq._frozen_kwargs == {"base_url": "https://api.groq.com/openai/v1", "api_key_env": "GROQ_API_KEY"}
    mistral = MistralAPIAdapter("open-mixtral-8x7b", 0, 1, {}, api_key="secret").resolve_llm_agent()
    assert mistral._frozen_kwargs == {"base_url": "https://api.mistral.ai/v1"}
    assert mistral._non_freezable_kwargs["api_key"] == "secret"
    openai = OpenAiAPIAdapter("gpt-4", 0, 1, {}).resolve_llm_agent()
    assert openai._frozen_kwargs == {}
    custom = CustomAPIAdapter("http://localhost:8000/v1", "m", 0, 1, {}).resolve_llm_agent()
    assert custom._frozen_kwargs == {"base_url": "http://localhost:8000/v1"}
    assert custom._non_freezable_kwargs["api_key"] == "not-needed"  # never the OPENAI_API_KEY of the environment


def test_with_miniagents_nb_llm_fake_the_vendor_adapters_use_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "fake")
    usage: dict[str, int] = {}
    adapter = GroqAPIAdapter("llama3-8b-8192", 1, 1, usage, api_key="XXXX")
    assert adapter.generate([UserMessage(content="hello there")]) == "hello there"  # the fake echoes by default
    assert usage == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


def test_token_usage_accumulates_in_the_shared_dict() -> None:
    usage: dict[str, int] = {}
    first = GroqAPIAdapter("m", 1, 1, usage, llm_agent=FakeLLMAgent.fork(replies=["one two three"]))
    second = OpenAiAPIAdapter("m", 1, 1, usage, llm_agent=FakeLLMAgent.fork(replies=["four"]))
    assert first.generate([SystemMessage(content="be brief"), UserMessage(content="count")]) == "one two three"
    assert second.generate(["count again please"]) == "four"
    assert usage == {"prompt_tokens": 3 + 3, "completion_tokens": 3 + 1, "total_tokens": 6 + 4}


def test_llm_kwargs_reach_the_llm_agent() -> None:
    """`max_tokens` is a real request argument: the fake honours it by cutting the reply."""
    adapter = OpenAiAPIAdapter("m", 0, 1, {}, max_tokens=2, llm_agent=FakeLLMAgent.fork(replies=["a b c d"]))
    assert adapter.generate(["go"]) == "a b"


def test_fake_llm_adapter_replies_in_order_and_records_usage() -> None:
    usage: dict[str, int] = {}
    adapter = FakeLLMAdapter(["first", "second reply"], token_usage=usage)

    async def main() -> list[str]:
        return [await adapter.agenerate(["q"]), await adapter.agenerate(["q"])]

    assert MiniAgents().run(main()) == ["first", "second reply"]
    assert usage == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_fake_llm_adapter_reply_fn_sees_the_history() -> None:
    script = ScriptedLLM(["ok"])
    adapter = script.adapter()
    history = [SystemMessage(content="sys"), UserMessage(content="u1"), AssistantMessage(content="a1"), "u2"]
    assert adapter.generate(history) == "ok"
    assert script.calls == [[("system", "sys"), ("user", "u1"), ("assistant", "a1"), ("user", "u2")]]


def test_tinysmith_style_message_objects_are_accepted() -> None:
    class OldMessage:
        def __init__(self, content: str, role: str) -> None:
            self.content, self.role = content, role

    script = ScriptedLLM(["ok"])
    assert script.adapter().generate([OldMessage("hi", "user")]) == "ok"
    assert script.calls == [[("user", "hi")]]
    with pytest.raises(LLMAdapterError, match="Cannot send a object"):
        script.adapter().generate([object()])


def test_context_length_errors_become_max_context_error() -> None:
    error = LLMBadRequestError(
        "OpenAI refused the request (HTTP 400): This model's maximum context length is 8192 tokens.",
        provider="openai",
        status=400,
    )
    adapter = FakeLLMAdapter(reply_fn=ScriptedLLM([error]))
    with pytest.raises(MaxContextError, match="does not fit the context") as caught:
        adapter.generate(["a very long prompt"])
    assert caught.value.__cause__ is error


def test_other_bad_requests_are_not_mistaken_for_context_errors() -> None:
    """tinysmith turned every HTTP 400 into "context too large"."""
    error = LLMBadRequestError("OpenAI refused the request (HTTP 400): unknown model.", provider="openai", status=400)
    adapter = FakeLLMAdapter(reply_fn=ScriptedLLM([error]))
    with pytest.raises(LLMBadRequestError, match="unknown model"):
        adapter.generate(["q"])
    assert not is_context_length_error(error)


def test_an_error_message_reply_is_an_adapter_error() -> None:
    script = ScriptedLLM([RuntimeError("boom")])

    async def main() -> str:
        return await FakeLLMAdapter(reply_fn=script).agenerate(["q"])

    with pytest.raises(LLMAdapterError, match="replied with an error: RuntimeError: boom"):
        MiniAgents(errors_as_messages=True).run(main())


def test_adapter_without_an_llm_agent() -> None:
    with pytest.raises(LLMAdapterError, match="pass `llm_agent=`"):
        MiniAgentLLMAdapter().generate(["q"])


def test_a_tinysmith_style_sync_adapter_works() -> None:
    class EchoAdapter(LLMAdapter):
        def generate(self, messages: Any) -> str:
            return str(messages[-1].content)

    async def main() -> str:
        return await EchoAdapter().agenerate([UserMessage(content="hi")])

    assert MiniAgents().run(main()) == "hi"


def test_an_adapter_must_override_one_method() -> None:
    with pytest.raises(NotImplementedError, match="agenerate"):
        LLMAdapter().generate(["q"])

    async def main() -> str:
        return await LLMAdapter().agenerate(["q"])

    with pytest.raises(NotImplementedError, match="agenerate"):
        MiniAgents().run(main())


async def test_generate_under_a_running_loop_says_to_await_agenerate() -> None:
    with pytest.raises(RunningEventLoopError, match=re.escape("await FakeLLMAdapter.agenerate(...)")):
        FakeLLMAdapter(["x"]).generate(["q"])


def test_human_input_adapter_reads_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return "ls -la"

    monkeypatch.setattr("builtins.input", fake_input)
    assert HumanInputAdapter().generate([UserMessage(content="what now?")]) == "ls -la"
    assert HumanInputAdapter("? ", input_fn=lambda prompt: prompt + "typed").generate(["q"]) == "? typed"
    assert prompts == ["> "]


def test_usage_of_reads_openai_and_anthropic_shapes() -> None:
    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        ctx.reply(AssistantMessage(content="x", usage={"input_tokens": 3, "output_tokens": 4}))

    async def main() -> Any:
        return (await replier.trigger())[0]

    message = MiniAgents().run(main())
    assert usage_of(message) == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert usage_of(AssistantMessage(content="no usage")) is None
    assert usage_of({"usage": {"total_tokens": 5}}) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 5}
