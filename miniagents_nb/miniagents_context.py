"""Where `MiniAgents` used to live (`miniagents_nb.agents.context` now); the import path keeps working."""

from __future__ import annotations

from miniagents_nb.agents.context import MiniAgents, PersistMessageEventHandler, PersistMessagesEventHandler

__all__ = ["MiniAgents", "PersistMessageEventHandler", "PersistMessagesEventHandler"]
