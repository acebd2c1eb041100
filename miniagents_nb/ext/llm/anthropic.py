"""The seeds' function-style Anthropic agent: `from miniagents_nb.ext.llm.anthropic import anthropic_agent`.

`anthropic_agent.fork(model=..., max_tokens=1000)` behaves exactly like `AnthropicAgent`, under the alias
`ANTHROPIC_AGENT`. No SDK is imported until the agent runs.
"""

from __future__ import annotations

from typing import Any

from miniagents_nb.agents import InteractionContext
from miniagents_nb.ext.llms.anthropic import AnthropicAgent, AnthropicLLMAgent, aprepare_dicts_for_anthropic
from miniagents_nb.ext.llms.llm_utils import LLMMiniAgent, llm_miniagent
from miniagents_nb.ext.llms.messages import AnthropicMessage

__all__ = [
    "AnthropicAgent",
    "AnthropicMessage",
    "anthropic_agent",
    "aprepare_dicts_for_anthropic",
    "create_anthropic_agent",
]


async def _anthropic_agent(ctx: InteractionContext, **kwargs: Any) -> None:
    """Answers its input with one Claude message, streamed token by token."""
    await AnthropicLLMAgent(ctx=ctx, **kwargs)()


anthropic_agent: LLMMiniAgent = llm_miniagent(_anthropic_agent, alias="ANTHROPIC_AGENT")
"""The Anthropic agent, function style: fork it with `model=` (and any other `AnthropicAgent` argument)."""


def create_anthropic_agent(model: str, **kwargs: Any) -> LLMMiniAgent:
    """Factory in the style of the earliest README: `anthropic_agent` forked with `model` and any other arguments."""
    return anthropic_agent.fork(model=model, **kwargs)
