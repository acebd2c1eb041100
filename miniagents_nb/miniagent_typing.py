"""The seeds' module path for the agent-level callable and message types."""

from __future__ import annotations

from miniagents_nb.agents import AgentFunction, PersistMessageEventHandler, PersistMessagesEventHandler
from miniagents_nb.messages import MessageTokenStreamer, MessageType, SingleMessageType

__all__ = [
    "AgentFunction",
    "MessageTokenStreamer",
    "MessageType",
    "PersistMessageEventHandler",
    "PersistMessagesEventHandler",
    "SingleMessageType",
]
