"""The seeds' module for the agent API (`from miniagents_nb.miniagents import MiniAgents, miniagent, ...`)."""

from __future__ import annotations

from miniagents_nb.agents import (
    AgentCall,
    AgentCallNode,
    AgentFunction,
    AgentInteractionNode,
    AgentReplyNode,
    InteractionContext,
    MiniAgent,
    MiniAgents,
    PersistMessageEventHandler,
    PersistMessagesEventHandler,
    miniagent,
)
from miniagents_nb.messages import (
    ErrorMessage,
    Message,
    MessagePromise,
    MessageSequence,
    MessageSequencePromise,
    MessageTokenAppender,
    StrictMessage,
    TextMessage,
    TextToken,
    Token,
)

__all__ = [
    "AgentCall",
    "AgentCallNode",
    "AgentFunction",
    "AgentInteractionNode",
    "AgentReplyNode",
    "ErrorMessage",
    "InteractionContext",
    "Message",
    "MessagePromise",
    "MessageSequence",
    "MessageSequencePromise",
    "MessageTokenAppender",
    "MiniAgent",
    "MiniAgents",
    "PersistMessageEventHandler",
    "PersistMessagesEventHandler",
    "StrictMessage",
    "TextMessage",
    "TextToken",
    "Token",
    "miniagent",
]
