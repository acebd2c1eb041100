"""`default_llm_agent()`: the LLM the tutorials use, picked from the environment so they run with or without keys.

The choice is made when the function is called (never at import):

1. `MINIAGENTS_NB_LLM` = `fake`, `openai` or `anthropic` (any case) decides;
2. otherwise `OPENAI_API_KEY` set -> OpenAI, else `ANTHROPIC_API_KEY` set -> Anthropic;
3. otherwise the offline `FakeLLMAgent`.

The model is `MINIAGENTS_NB_LLM_MODEL` when set, else a small current model of the provider; a `model=` passed in
`fork_kwargs` wins over both. The fake LLM's own arguments (`replies`, `reply_fn`, `token_delay`) are dropped when a
real provider is picked, so a notebook can script offline answers and still run unchanged on a real model.
"""

from __future__ import annotations

import os
from typing import Any

from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext.llms.llm_utils import LLMMiniAgent

__all__ = ["DEFAULT_MODELS", "FAKE_ONLY_ARGUMENTS", "default_llm_agent", "default_llm_provider"]

DEFAULT_MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5", "fake": "fake-llm"}
"""The model each provider gets when neither `model=` nor `MINIAGENTS_NB_LLM_MODEL` says otherwise."""


FAKE_ONLY_ARGUMENTS = ("replies", "reply_fn", "token_delay")
"""Arguments only the fake LLM understands (a real API would refuse them)."""


def default_llm_provider() -> str:
    """`fake`, `openai` or `anthropic`, by the rules of this module."""
    choice = os.environ.get("MINIAGENTS_NB_LLM", "").strip().lower()
    if choice:
        if choice not in DEFAULT_MODELS:
            raise InvalidArgumentsError(
                f"MINIAGENTS_NB_LLM={choice!r} is not a known LLM: set it to 'fake', 'openai' or 'anthropic' "
                "(or unset it to pick by the API keys that are set)."
            )
        return choice
    if os.environ.get("OPENAI_API_KEY"):
        return "openai"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    return "fake"


def default_llm_agent(**fork_kwargs: Any) -> LLMMiniAgent:
    """The LLM agent for this environment (`FakeLLMAgent`, `OpenAIAgent` or `AnthropicAgent`), forked with
    `fork_kwargs` (`system=`, `temperature=`, and `replies=` / `reply_fn=` / `token_delay=` used by the fake only)."""
    provider = default_llm_provider()
    if provider != "fake":
        for name in FAKE_ONLY_ARGUMENTS:
            fork_kwargs.pop(name, None)
    if provider == "openai":
        from miniagents_nb.ext.llms.openai import OpenAIAgent as agent
    elif provider == "anthropic":
        from miniagents_nb.ext.llms.anthropic import AnthropicAgent as agent
    else:
        from miniagents_nb.ext.llms.fake import FakeLLMAgent as agent
    fork_kwargs.setdefault("model", os.environ.get("MINIAGENTS_NB_LLM_MODEL") or DEFAULT_MODELS[provider])
    forked: LLMMiniAgent = agent.fork(**fork_kwargs)
    return forked
