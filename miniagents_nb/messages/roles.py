"""Conversation roles: who said a message (`user`, `system`, `assistant`), as LLMs and chat agents need to know.

They belong to the core, not to the LLM integrations: console and history agents, the notebook chat and every LLM
agent exchange them, and none of those should need an LLM SDK (or the LLM modules) to say "the user said this".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from miniagents_nb.messages.message import TextMessage

__all__ = ["AssistantMessage", "LLMMessage", "SystemMessage", "UserMessage"]


class LLMMessage(TextMessage):
    """A message with a conversation `role`."""

    role: str

    if TYPE_CHECKING:
        # `UserMessage("hi")` works (TextMessage takes the content first); say so to type checkers, whose pydantic
        # plugin would otherwise give each model a keyword-only `__init__` (so each role repeats this).
        def __init__(self, content: str | None = None, **metadata: Any) -> None: ...


class UserMessage(LLMMessage):
    """What the user said."""

    role: str = "user"

    if TYPE_CHECKING:

        def __init__(self, content: str | None = None, **metadata: Any) -> None: ...


class SystemMessage(LLMMessage):
    """Instructions for the model."""

    role: str = "system"

    if TYPE_CHECKING:

        def __init__(self, content: str | None = None, **metadata: Any) -> None: ...


class AssistantMessage(LLMMessage):
    """What a model answered (with the model's name and the replying agent's alias when known)."""

    role: str = "assistant"
    model: str | None = None
    agent_alias: str | None = None

    if TYPE_CHECKING:

        def __init__(self, content: str | None = None, **metadata: Any) -> None: ...
