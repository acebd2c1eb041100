"""Adding an LLM provider: one `LLMAgent` subclass with public hooks, typed as what it is, loaded only when used."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import mypy.api
import pytest

from miniagents_nb import InteractionContext, Message, MiniAgents, miniagent
from miniagents_nb.errors import AgentDefinitionError
from miniagents_nb.ext.llms import AnthropicLLMAgent, FakeLLM, LLMAgent, OpenAILLMAgent, llm_miniagent
from miniagents_nb.ext.llms.conversion import amessages_to_llm_dicts
from miniagents_nb.ext.llms.llm_utils import LEGACY_HOOK_NAMES
from miniagents_nb.messages import MessageTokenAppender

REPO_ROOT = Path(__file__).resolve().parents[2]


class ShoutingLLM(LLMAgent):
    """A provider written only against the public hooks: it replies the input in capitals, word by word."""

    provider = "shouting"

    async def aprepare_message_dicts(self) -> list[dict[str, Any]]:
        return await amessages_to_llm_dicts(self.ctx.message_promises)

    async def aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        words = " ".join(str(item["content"]) for item in message_dicts).upper().split()
        for index, word in enumerate(words):
            token_appender.append(word if index == 0 else f" {word}")
        token_appender.auxiliary_field_collector.update(model="shout-2", usage={"words": len(words)})

    def after_response(self, collected: dict[str, Any]) -> None:
        super().after_response(collected)
        collected["stop_reason"] = "end"


ShoutingAgent = llm_miniagent(ShoutingLLM, alias="SHOUTING_AGENT", model="shout-1")


class UpstreamStyleLLM(LLMAgent):
    """A subclass written for upstream MiniAgents: it overrides the underscored hooks."""

    async def _aprepare_message_dicts(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": "old"}]

    async def _aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        token_appender.append(f"{message_dicts[0]['content']} style")


class HooklessLLM(LLMAgent):
    pass


async def test_a_provider_of_public_hooks_streams_through_a_chain() -> None:
    @miniagent
    async def relay(ctx: InteractionContext) -> None:
        ctx.reply(ShoutingAgent.trigger(ctx.message_promises))

    async with MiniAgents():
        reply = relay.trigger(["hello there", "general kenobi"])
        promises = [promise async for promise in reply]
        assert len(promises) == 1
        tokens = [token async for token in promises[0]]
        message = await promises[0]
    assert tokens == ["HELLO", " THERE", " GENERAL", " KENOBI"]
    assert isinstance(message, Message)
    assert str(message) == "HELLO THERE GENERAL KENOBI"
    data = message.model_dump()
    assert data["model"] == "shout-1"  # the request's model, known beforehand
    assert data["response_model"] == "shout-2"  # what the provider served (the default after_response)
    assert data["usage"]["words"] == 4
    assert data["stop_reason"] == "end"  # the subclass's after_response ran too
    assert data["agent_alias"] == "SHOUTING_AGENT"


async def test_an_upstream_style_subclass_still_works() -> None:
    async with MiniAgents():
        messages = await llm_miniagent(UpstreamStyleLLM, model="m").trigger("anything")
    assert [str(message) for message in messages] == ["old style"]


async def test_a_subclass_without_hooks_fails_at_its_message_saying_what_to_override() -> None:
    async with MiniAgents():
        reply = llm_miniagent(HooklessLLM, alias="HOOKLESS", model="m").trigger("hi")
        with pytest.raises(AgentDefinitionError, match=r"HooklessLLM .*override `async def aprepare_message_dicts"):
            await reply


@pytest.mark.parametrize("provider", [OpenAILLMAgent, AnthropicLLMAgent, FakeLLM])
def test_the_bundled_providers_use_only_the_public_hooks(provider: type[LLMAgent]) -> None:
    own = vars(provider)
    assert "aprepare_message_dicts" in own
    assert "aproduce_tokens" in own
    for public, legacy in LEGACY_HOOK_NAMES.items():  # an older name, where the class has it, is only an alias
        if legacy in own:
            assert own[legacy] is own[public]


class QuietShoutingLLM(ShoutingLLM):
    """Written against the older names on top of a provider of public hooks: `super()` reaches the public ones."""

    async def _aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        token_appender.append("(quietly) ")
        await super()._aproduce_tokens(message_dicts, token_appender)

    def _after_response(self, collected: dict[str, Any]) -> None:
        super()._after_response(collected)
        collected["stop_reason"] = f"quiet {collected['stop_reason']}"


async def test_older_hook_names_and_public_ones_mix_through_super() -> None:
    async with MiniAgents():
        (message,) = await llm_miniagent(QuietShoutingLLM, model="m").trigger("hi you")
    assert str(message) == "(quietly) HI YOU"
    assert message.model_dump()["stop_reason"] == "quiet end"


def test_llm_agents_are_typed_as_what_they_are(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from typing import Any, Callable
        from typing_extensions import assert_type
        from miniagents_nb import AgentCall
        from miniagents_nb.ext.llms import (
            AnthropicAgent, FakeLLM, FakeLLMAgent, LLMMiniAgent, OpenAIAgent, default_llm_agent, llm_miniagent,
            openai_embedding_agent,
        )
        assert_type(OpenAIAgent, LLMMiniAgent)
        assert_type(AnthropicAgent, LLMMiniAgent)
        assert_type(FakeLLMAgent, LLMMiniAgent)
        assert_type(openai_embedding_agent, LLMMiniAgent)
        assert_type(default_llm_agent(), LLMMiniAgent)
        assert_type(llm_miniagent(FakeLLM, alias="F"), LLMMiniAgent)
        assert_type(llm_miniagent(alias="F"), Callable[[Any], LLMMiniAgent])
        assert_type(OpenAIAgent.fork(model="m"), LLMMiniAgent)
        assert_type(OpenAIAgent.initiate_call(), AgentCall)
        """
    )
    snippet = tmp_path / "typed_llm_agents.py"
    snippet.write_text(code, encoding="utf-8")
    stdout, stderr, status = mypy.api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(snippet)])
    assert status == 0, stdout + stderr


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


PROVIDER_MODULES = {f"miniagents_nb.ext.llms.{name}" for name in ("openai", "anthropic", "fake", "openai_embeddings")}


def test_importing_the_package_loads_no_provider_module() -> None:
    loaded = _modules_after("import miniagents_nb.ext.llms")
    assert not loaded & PROVIDER_MODULES
    assert not {"openai", "anthropic"} & loaded


def test_a_provider_module_loads_when_one_of_its_names_is_used() -> None:
    loaded = _modules_after("from miniagents_nb.ext.llms import AnthropicAgent")
    assert "miniagents_nb.ext.llms.anthropic" in loaded
    assert "anthropic" not in loaded  # the SDK still waits for the first call
    every = _modules_after("import miniagents_nb.ext.llms as llms\n[getattr(llms, name) for name in llms.__all__]")
    assert PROVIDER_MODULES <= every
