"""Agents: `@miniagent`, `MiniAgent`, `AgentCall`, `InteractionContext`, the `MiniAgents` context, interaction nodes.

An agent is an async function (or a class with an async `__call__`) that reads `ctx.message_promises` and replies
with `ctx.reply(...)`. Calling it (`trigger`) returns its reply sequence at once; the function itself starts at the
next task switch (or when the replies are first consumed, with `start_soon=False`).
"""

from __future__ import annotations

from miniagents_nb.agents.agent import MiniAgent, miniagent
from miniagents_nb.agents.call import AgentCall, AgentCallStatus
from miniagents_nb.agents.context import MiniAgents, PersistMessageEventHandler, PersistMessagesEventHandler
from miniagents_nb.agents.definition import AgentDefinition, AgentFunction, normalize_alias
from miniagents_nb.agents.interaction import (
    InteractionContext,
    current_interaction,
    display_trace,
    get_current_agent_trace,
)
from miniagents_nb.agents.nodes import AgentCallNode, AgentInteractionNode, AgentReplyNode

__all__ = [
    "AgentCall",
    "AgentCallNode",
    "AgentCallStatus",
    "AgentDefinition",
    "AgentFunction",
    "AgentInteractionNode",
    "AgentReplyNode",
    "InteractionContext",
    "MiniAgent",
    "MiniAgents",
    "PersistMessageEventHandler",
    "PersistMessagesEventHandler",
    "current_interaction",
    "display_trace",
    "get_current_agent_trace",
    "miniagent",
    "normalize_alias",
]
