"""Message roles for LLM conversations (no LLM SDK is imported here)."""

from __future__ import annotations

from miniagents_nb.messages import TextMessage

__all__ = ["AssistantMessage", "LLMMessage", "SystemMessage", "UserMessage"]


class LLMMessage(TextMessage):
    """A message with a conversation `role`."""

    role: str


class UserMessage(LLMMessage):
    """What the user said."""

    role: str = "user"


class SystemMessage(LLMMessage):
    """Instructions for the model."""

    role: str = "system"


class AssistantMessage(LLMMessage):
    """What a model answered (with the model's name and the replying agent's alias when known)."""

    role: str = "assistant"
    model: str | None = None
    agent_alias: str | None = None
