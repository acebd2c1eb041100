"""LLM agents (OpenAI, Anthropic, any OpenAI-compatible server, an offline fake) and LLM message roles.

Importing this package imports no LLM SDK: `openai` / `anthropic` are imported when an agent first calls them.
See docs/llms.md for the guide.
"""

from __future__ import annotations

from miniagents_nb.ext.llms.anthropic import AnthropicAgent, AnthropicLLMAgent, aprepare_dicts_for_anthropic
from miniagents_nb.ext.llms.default_llm import default_llm_agent, default_llm_provider
from miniagents_nb.ext.llms.errors import (
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMConnectionError,
    LLMDependencyError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)
from miniagents_nb.ext.llms.fake import FakeLLM, FakeLLMAgent
from miniagents_nb.ext.llms.llm_utils import LLMAgent, LLMMiniAgent, llm_miniagent, message_to_llm_dict
from miniagents_nb.ext.llms.messages import (
    AnthropicMessage,
    AssistantMessage,
    EmbeddingMessage,
    FakeLLMMessage,
    LLMMessage,
    LLMReplyMessage,
    OpenAIMessage,
    PromptLogMessage,
    SystemMessage,
    UserMessage,
)
from miniagents_nb.ext.llms.openai import OpenAIAgent, OpenAILLMAgent, aprepare_dicts_for_openai
from miniagents_nb.ext.llms.openai_embeddings import openai_embedding_agent

__all__ = [
    "AnthropicAgent",
    "AnthropicLLMAgent",
    "AnthropicMessage",
    "AssistantMessage",
    "EmbeddingMessage",
    "FakeLLM",
    "FakeLLMAgent",
    "FakeLLMMessage",
    "LLMAgent",
    "LLMAuthenticationError",
    "LLMBadRequestError",
    "LLMConnectionError",
    "LLMDependencyError",
    "LLMError",
    "LLMMessage",
    "LLMMiniAgent",
    "LLMRateLimitError",
    "LLMReplyMessage",
    "LLMResponseError",
    "LLMServerError",
    "LLMTimeoutError",
    "OpenAIAgent",
    "OpenAILLMAgent",
    "OpenAIMessage",
    "PromptLogMessage",
    "SystemMessage",
    "UserMessage",
    "aprepare_dicts_for_anthropic",
    "aprepare_dicts_for_openai",
    "default_llm_agent",
    "default_llm_provider",
    "llm_miniagent",
    "message_to_llm_dict",
    "openai_embedding_agent",
]
