"""The older import path of the seeds for LLM message roles (`from miniagents_nb.ext.llm import UserMessage`)."""

from __future__ import annotations

from miniagents_nb.ext.llms.messages import AssistantMessage, LLMMessage, SystemMessage, UserMessage

__all__ = ["AssistantMessage", "LLMMessage", "SystemMessage", "UserMessage"]
