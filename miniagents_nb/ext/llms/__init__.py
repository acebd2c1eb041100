"""LLM agents and message roles (provider agents come with their SDK extras)."""

from __future__ import annotations

from miniagents_nb.ext.llms.messages import AssistantMessage, LLMMessage, SystemMessage, UserMessage

__all__ = ["AssistantMessage", "LLMMessage", "SystemMessage", "UserMessage"]
