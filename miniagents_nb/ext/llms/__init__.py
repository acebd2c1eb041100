"""LLM agents (OpenAI, Anthropic, any OpenAI-compatible server, an offline fake) and LLM message roles.

Importing this package imports no LLM SDK and no provider module: each provider's module (`openai.py`,
`anthropic.py`, `fake.py`, `openai_embeddings.py`) is imported when one of its names is first used, and the SDK
itself when an agent first calls it. Python functions and agents become tools with `tool` (`tools.py`), and
`trigger(..., tools=[...])` runs the tool loop (`tool_loop.py`). See docs/llms.md for the guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniagents_nb.compat import lazy_attributes
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
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from miniagents_nb.ext.llms.tool_errors import (
    ToolArgumentsError,
    ToolDefinitionError,
    ToolError,
    ToolLoopLimitError,
    ToolNotFoundError,
    ToolTimeoutError,
)
from miniagents_nb.ext.llms.tools import Tool, ToolCall, ToolSet, as_tool, tool
from miniagents_nb.messages import ImageMessage

if TYPE_CHECKING:  # type checkers and IDEs see the real objects; at run time `__getattr__` imports them on first use
    from miniagents_nb.ext.llms.anthropic import AnthropicAgent, AnthropicLLMAgent, aprepare_dicts_for_anthropic
    from miniagents_nb.ext.llms.fake import FakeLLM, FakeLLMAgent
    from miniagents_nb.ext.llms.openai import OpenAIAgent, OpenAILLMAgent, aprepare_dicts_for_openai
    from miniagents_nb.ext.llms.openai_embeddings import openai_embedding_agent

_PROVIDER_NAMES = {
    "AnthropicAgent": "anthropic",
    "AnthropicLLMAgent": "anthropic",
    "aprepare_dicts_for_anthropic": "anthropic",
    "FakeLLM": "fake",
    "FakeLLMAgent": "fake",
    "OpenAIAgent": "openai",
    "OpenAILLMAgent": "openai",
    "aprepare_dicts_for_openai": "openai",
    "openai_embedding_agent": "openai_embeddings",
}
if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name is an error for them, not an `Any`
    __getattr__ = lazy_attributes(
        __name__, {name: f"{__name__}.{module}.{name}" for name, module in _PROVIDER_NAMES.items()}
    )

__all__ = [
    "AnthropicAgent",
    "AnthropicLLMAgent",
    "AnthropicMessage",
    "AssistantMessage",
    "EmbeddingMessage",
    "FakeLLM",
    "FakeLLMAgent",
    "FakeLLMMessage",
    "ImageMessage",
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
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallMessage",
    "ToolDefinitionError",
    "ToolError",
    "ToolLoopLimitError",
    "ToolNotFoundError",
    "ToolResultMessage",
    "ToolSet",
    "ToolTimeoutError",
    "UserMessage",
    "as_tool",
    "aprepare_dicts_for_anthropic",
    "aprepare_dicts_for_openai",
    "default_llm_agent",
    "default_llm_provider",
    "llm_miniagent",
    "message_to_llm_dict",
    "openai_embedding_agent",
    "tool",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
