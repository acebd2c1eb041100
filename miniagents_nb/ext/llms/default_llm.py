"""`default_llm_agent()`: the LLM the tutorials use, picked from the environment so they run with or without keys.

The choice is made when the function is called (never at import):

1. `MINIAGENTS_NB_LLM` = `fake`, `openai`, `anthropic` or a registered provider's name (any case) decides;
2. otherwise the first provider whose API key is set (`OPENAI_API_KEY` -> OpenAI, else `ANTHROPIC_API_KEY` ->
   Anthropic, then providers registered later);
3. otherwise the offline `FakeLLMAgent`.

The model is `MINIAGENTS_NB_LLM_MODEL` when set, else a small current model of the provider; a `model=` passed in
`fork_kwargs` wins over both. The fake LLM's own arguments (`replies`, `reply_fn`, `token_delay`) are dropped when a
real provider is picked, so a notebook can script offline answers and still run unchanged on a real model.
"""

from __future__ import annotations

import os
from typing import Any

from miniagents_nb.ext.llms.llm_utils import LLMMiniAgent
from miniagents_nb.ext.llms.providers import DEFAULT_MODELS, pick_provider

__all__ = ["DEFAULT_MODELS", "FAKE_ONLY_ARGUMENTS", "default_llm_agent", "default_llm_provider"]

FAKE_ONLY_ARGUMENTS = ("replies", "reply_fn", "token_delay")
"""Arguments only the fake LLM understands (a real API would refuse them)."""


def default_llm_provider() -> str:
    """The name of the provider `default_llm_agent()` uses (see `miniagents_nb.ext.llms.providers.pick_provider`)."""
    return pick_provider().name


def default_llm_agent(**fork_kwargs: Any) -> LLMMiniAgent:
    """The LLM agent for this environment (`FakeLLMAgent`, `OpenAIAgent`, `AnthropicAgent` or a registered
    provider's), forked with `fork_kwargs` (`system=`, `temperature=`, and `replies=` / `reply_fn=` /
    `token_delay=`, used by the offline fake only)."""
    provider = pick_provider()
    if not provider.offline:
        for name in FAKE_ONLY_ARGUMENTS:
            fork_kwargs.pop(name, None)
    agent = provider.load_agent()
    fork_kwargs.setdefault("model", os.environ.get("MINIAGENTS_NB_LLM_MODEL") or provider.default_model)
    forked: LLMMiniAgent = agent.fork(**fork_kwargs)
    return forked
