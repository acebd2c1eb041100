"""Interaction nodes: the persisted record of agent calls (what an agent was asked, and what it replied)."""

from __future__ import annotations

from miniagents_nb.agents.definition import AgentDefinition
from miniagents_nb.messages import Message

__all__ = ["AgentCallNode", "AgentInteractionNode", "AgentReplyNode"]


class AgentInteractionNode(Message):
    """A persisted record of an interaction with `agent`."""

    agent: AgentDefinition


class AgentCallNode(AgentInteractionNode):
    """The input of one agent call (with the call's arguments and the agent's interaction metadata)."""

    messages: tuple[Message, ...]


class AgentReplyNode(AgentInteractionNode):
    """The replies of one agent call, linked to its `AgentCallNode`."""

    agent_call: AgentCallNode
    replies: tuple[Message, ...]
