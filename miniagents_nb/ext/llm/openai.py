"""The seeds' function-style OpenAI agent: `from miniagents_nb.ext.llm.openai import openai_agent`.

`openai_agent.fork(model="gpt-4o-2024-05-13")` then `.inquire("Hello", system=..., max_tokens=..., temperature=...)`,
or the earliest README's `create_openai_agent(model="gpt-4")`. It behaves exactly like `OpenAIAgent` (same
arguments, streaming, errors), under the alias `OPENAI_AGENT`. No SDK is imported until the agent runs.
"""

from __future__ import annotations

from typing import Any

from miniagents_nb.agents import InteractionContext
from miniagents_nb.ext.llms.llm_utils import LLMMiniAgent, llm_miniagent
from miniagents_nb.ext.llms.messages import OpenAIMessage
from miniagents_nb.ext.llms.openai import OpenAIAgent, OpenAILLMAgent, aprepare_dicts_for_openai, openai_embedding_agent

__all__ = [
    "OpenAIAgent",
    "OpenAIMessage",
    "aprepare_dicts_for_openai",
    "create_openai_agent",
    "openai_agent",
    "openai_embedding_agent",
]


async def _openai_agent(ctx: InteractionContext, **kwargs: Any) -> None:
    """Answers its input with one OpenAI chat completion, streamed token by token."""
    await OpenAILLMAgent(ctx=ctx, **kwargs)()


openai_agent: LLMMiniAgent = llm_miniagent(_openai_agent, alias="OPENAI_AGENT")
"""The OpenAI chat agent, function style: fork it with `model=` (and any other `OpenAIAgent` argument)."""


def create_openai_agent(model: str, **kwargs: Any) -> LLMMiniAgent:
    """The earliest README's factory: `openai_agent` forked with `model` and any other arguments."""
    return openai_agent.fork(model=model, **kwargs)
